output "submit_url" {
  description = "HTTPS URL of the submit API."
  value       = google_cloudfunctions2_function.submit.service_config[0].uri
}

output "dispatch_url" {
  description = "HTTPS URL of dispatch (internal ingress: reachable by Pub/Sub push only)."
  value       = google_cloudfunctions2_function.dispatch.service_config[0].uri
}

output "sweep_url" {
  description = "HTTPS URL of the sweep (internal ingress: reachable by Pub/Sub push only)."
  value       = google_cloudfunctions2_function.sweep.service_config[0].uri
}

output "submit_service_account_email" {
  description = "Service account submit runs as."
  value       = google_service_account.submit.email
}

output "dispatch_service_account_email" {
  description = "Service account dispatch runs as."
  value       = google_service_account.dispatch.email
}

output "sweep_service_account_email" {
  description = "Service account the sweep runs as."
  value       = google_service_account.sweep.email
}

output "push_service_account_email" {
  description = "Service account Pub/Sub pushes to dispatch and sweep as."
  value       = google_service_account.push.email
}
