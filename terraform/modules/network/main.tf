# The private network every part meets on.
#
#   Cloud SQL (private IP only) and Memorystore peer with it through one private services
#   access range (servicenetworking.googleapis.com).
#   The functions join it with Direct VPC egress from their own subnet: no connector VMs.
#   The Vertex AI job joins it through a Private Service Connect interface: Vertex attaches
#   the job's worker to a network attachment on a subnet of this network, in each region a
#   job may run in. Vertex's older route, VPC peering, cannot reach Cloud SQL's private IP:
#   that IP lives in a second peered network and peering is not transitive. A PSC interface
#   is an address in this network, so the one private services access peering carries its
#   traffic to Cloud SQL like any VM's (docs/deploy.md, "How the job reaches Cloud SQL").

resource "google_compute_network" "this" {
  project                 = var.project_id
  name                    = var.network_name
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

# Nothing in this network takes connections from outside: the functions' and the job's
# interfaces only open connections (answers come back on them), and no VM listens here.
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

# Direct VPC egress takes the functions' instance addresses from this subnet (two per
# instance while revisions change: a /24 serves about 100 instances).
resource "google_compute_subnetwork" "functions" {
  project                  = var.project_id
  name                     = "${var.network_name}-functions"
  region                   = var.region
  network                  = google_compute_network.this.id
  ip_cidr_range            = var.functions_subnet_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

# One subnet and network attachment per region a job may run in (the configured region and
# every fallback region): a network attachment is regional, and Vertex resolves the
# attachment's name in the region it places the job.
resource "google_compute_subnetwork" "vertex_jobs" {
  for_each = var.vertex_job_subnets

  project                  = var.project_id
  name                     = "${var.network_name}-vertex-${each.key}"
  region                   = each.key
  network                  = google_compute_network.this.id
  ip_cidr_range            = each.value
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_10_MIN"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_network_attachment" "vertex_jobs" {
  for_each = var.vertex_job_subnets

  project               = var.project_id
  name                  = var.network_attachment_name
  region                = each.key
  description           = "Private Service Connect interfaces of podscribe's Vertex AI jobs"
  connection_preference = "ACCEPT_AUTOMATIC"
  subnetworks           = [google_compute_subnetwork.vertex_jobs[each.key].self_link]
}

# Vertex AI's service agent plugs the job's interface into the attachment. It exists only
# once created (enabling the API does not create it), so it is created here before the grant.
resource "google_project_service_identity" "vertex_ai" {
  provider = google-beta

  project = var.project_id
  service = "aiplatform.googleapis.com"
}

# The role Google's Vertex AI PSC-interface walk-throughs grant the service agent so that it
# may attach interfaces to this project's network attachments (a custom role with only the
# compute.networkAttachments permissions would be narrower; see docs/deploy.md).
resource "google_project_iam_member" "vertex_agent_network_admin" {
  project = var.project_id
  role    = "roles/compute.networkAdmin"
  member  = "serviceAccount:${google_project_service_identity.vertex_ai.email}"
}

# One allocated range for Google's producer services (Cloud SQL, Memorystore): they peer
# with the network through servicenetworking.googleapis.com. It is allocated after the
# subnets so that Google's choice of range cannot overlap them.
resource "google_compute_global_address" "private_services" {
  project       = var.project_id
  name          = "${var.network_name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = var.private_services_prefix_length
  network       = google_compute_network.this.id

  depends_on = [google_compute_subnetwork.functions, google_compute_subnetwork.vertex_jobs]
}

resource "google_service_networking_connection" "private_services" {
  network                 = google_compute_network.this.id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services.name]
}
