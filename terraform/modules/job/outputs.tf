output "repository_url" {
  description = "Docker repository URL, `REGION-docker.pkg.dev/PROJECT/REPOSITORY`."
  value       = "${google_artifact_registry_repository.images.location}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "service_account_email" {
  description = "Email of the service account the Vertex AI job runs as."
  value       = google_service_account.job.email
}

output "service_account_name" {
  description = "Full resource name of the job's service account (for act-as grants)."
  value       = google_service_account.job.name
}
