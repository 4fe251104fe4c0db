output "network_id" {
  description = "Id of the VPC network (`projects/PROJECT/global/networks/NAME`)."
  value       = google_compute_network.this.id
}

output "network_name" {
  description = "Name of the VPC network."
  value       = google_compute_network.this.name
}

output "functions_subnetwork_id" {
  description = "Id of the subnet the functions' Direct VPC egress takes addresses from."
  value       = google_compute_subnetwork.functions.id
}

output "vertex_network_attachment" {
  description = "Name of the network attachment (the same in every job region) Vertex AI jobs join with a Private Service Connect interface (`PODSCRIBE_VERTEX_NETWORK_ATTACHMENT`)."
  value       = var.network_attachment_name
  # The name is only usable once every region's attachment exists and the agent may use it.
  depends_on = [google_compute_network_attachment.vertex_jobs, google_project_iam_member.vertex_agent_network_admin]
}

output "private_services_connection" {
  description = "The private services access peering; producers (Cloud SQL, Memorystore) must be created after it."
  value       = google_service_networking_connection.private_services.id
}
