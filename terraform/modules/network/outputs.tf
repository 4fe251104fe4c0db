output "network_id" {
  description = "Id of the VPC network (`projects/PROJECT/global/networks/NAME`)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC network."
  value       = google_compute_network.this.name
}

output "vertex_network" {
  description = "The network as Vertex AI custom jobs name it: `projects/PROJECT_NUMBER/global/networks/NAME`."
  value       = "projects/${data.google_project.this.number}/global/networks/${google_compute_network.this.name}"
}

output "project_number" {
  description = "Number of the project (service agents are named after it)."
  value       = data.google_project.this.number
}

output "connector_id" {
  description = "Id of the Serverless VPC Access connector the functions use."
  value       = google_vpc_access_connector.functions.id
}

output "private_services_connection" {
  description = "The private services access peering; producers (Cloud SQL, Memorystore) must be created after it."
  value       = google_service_networking_connection.private_services.id
}
