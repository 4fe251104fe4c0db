output "api_keys_secret_id" {
  description = "Short id of the API-keys secret (`PODSCRIBE_API_KEYS`)."
  value       = google_secret_manager_secret.api_keys.secret_id
}

output "api_keys_secret_name" {
  description = "Full resource name of the API-keys secret."
  value       = google_secret_manager_secret.api_keys.id
}

output "redis_url_secret_id" {
  description = "Short id of the Redis URL secret (`PODSCRIBE_REDIS_URL`)."
  value       = google_secret_manager_secret.redis_url.secret_id
}

output "redis_url_secret_name" {
  description = "Full resource name of the Redis URL secret."
  value       = google_secret_manager_secret.redis_url.id
}

output "webhook_secret_id" {
  description = "Short id of the webhook signing secret (`PODSCRIBE_WEBHOOK_SECRET_VERSION`)."
  value       = google_secret_manager_secret.webhook_secret.secret_id
}
