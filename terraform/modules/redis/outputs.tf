output "host" {
  description = "Private IP of the instance."
  value       = google_redis_instance.this.host
}

output "port" {
  description = "Port of the instance."
  value       = google_redis_instance.this.port
}

output "redis_url" {
  description = "`redis://:AUTH@HOST:PORT/0` for `PODSCRIBE_REDIS_URL` (carries the AUTH string)."
  value       = "redis://:${google_redis_instance.this.auth_string}@${google_redis_instance.this.host}:${google_redis_instance.this.port}/0"
  sensitive   = true
}
