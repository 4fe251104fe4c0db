output "transcripts_bucket" {
  description = "Name of the transcripts bucket."
  value       = google_storage_bucket.transcripts.name
}

output "transcripts_bucket_url" {
  description = "`gs://` URL of the transcripts bucket."
  value       = google_storage_bucket.transcripts.url
}

output "sources_bucket" {
  description = "Name of the bucket holding the function bundles."
  value       = google_storage_bucket.sources.name
}
