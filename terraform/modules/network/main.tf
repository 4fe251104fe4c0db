# The private network every part meets on: Cloud SQL (private IP only), Memorystore and the
# Vertex AI job reach each other through one private services access peering, and the
# functions join it through a Serverless VPC Access connector.

data "google_project" "this" {
  project_id = var.project_id
}

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = var.network_name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

# Nothing in this network takes connections from outside: the only instances are the
# connector's, whose own rules Serverless VPC Access manages at a higher priority.
resource "google_compute_firewall" "deny_all_ingress" {
  project   = var.project_id
  name      = "${var.network_name}-deny-all-ingress"
  network   = google_compute_network.this.id
  direction = "INGRESS"
  priority  = 65534

  deny {
    protocol = "all"
  }

  source_ranges = ["0.0.0.0/0"]

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# One allocated range for Google's producer services (Cloud SQL, Memorystore, Vertex AI):
# they all peer with the network through servicenetworking.googleapis.com.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.network_name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
  network       = google_compute_network.this.id
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}

resource "google_vpc_access_connector" "functions" {
  project       = var.project_id
  name          = var.connector_name
  region        = var.region
  network       = google_compute_network.this.name
  ip_cidr_range = var.connector_cidr
  machine_type  = var.connector_machine_type
  min_instances = var.connector_min_instances
  max_instances = var.connector_max_instances
}
