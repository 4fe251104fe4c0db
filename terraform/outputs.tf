output "submit_url" {
  description = "HTTPS URL of the submit API (`POST /v1/transcriptions`)."
  value       = module.functions.submit_url
}

output "transcripts_bucket" {
  description = "Bucket holding transcripts and checkpoints."
  value       = module.storage.transcripts_bucket
}

output "sources_bucket" {
  description = "Bucket holding the function bundles."
  value       = module.storage.sources_bucket
}

output "jobs_topic" {
  description = "Pub/Sub topic that wakes dispatch."
  value       = module.pubsub.jobs_topic_id
}

output "dead_letter_subscription" {
  description = "Subscription holding jobs messages that dispatch failed on `dispatch_max_delivery_attempts` times."
  value       = module.pubsub.dead_letter_subscription
}

output "image_repository" {
  description = "Artifact Registry repository to push the job image to."
  value       = module.job.repository_url
}

output "job_image" {
  description = "Full image reference dispatch launches (`docker push` this)."
  value       = local.job_image
}

output "job_service_account" {
  description = "Service account the Vertex AI job runs as."
  value       = module.job.service_account_email
}

output "cloudsql_connection_name" {
  description = "Cloud SQL instance connection name."
  value       = module.sql.connection_name
}

output "cloudsql_instance" {
  description = "Cloud SQL instance name."
  value       = module.sql.instance_name
}

output "api_keys_secret" {
  description = "Secret Manager secret holding the accepted API keys."
  value       = module.secrets.api_keys_secret_id
}

output "database_bootstrap_sql" {
  description = "SQL to run once as the postgres user so the IAM database users may use the schema."
  value       = local.database_bootstrap_sql
}

output "migration_job_config" {
  description = "CustomJobSpec (JSON) for `gcloud ai custom-jobs create --config` that applies the migrations."
  value       = local.migration_job_config
}
