# A development deployment: the root module with only the inputs that matter.
#   cp terraform.tfvars.example terraform.tfvars   # then edit
#   terraform init && terraform apply

terraform {
  required_version = ">= 1.5, < 2.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 7.10, < 8"
    }
    # google_project_service_identity (service agents created before their grants) is beta.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = ">= 7.10, < 8"
    }
  }
}

variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."
}

variable "region" {
  type        = string
  description = "Region for all regional resources."
  default     = "us-central1"
}

variable "job_image_tag" {
  type        = string
  description = "Tag of the job image pushed to the output `image_repository`."
  default     = "latest"
}

variable "api_keys" {
  type        = string
  description = "Comma-separated API keys; prefer leaving it unset and adding them with gcloud."
  default     = null
  sensitive   = true
}

variable "db_deletion_protection" {
  type        = bool
  description = "Refuse to delete the database; pass false to apply and destroy when tearing down."
  default     = true
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}

module "podscribe" {
  source = "../.."

  project_id    = var.project_id
  region        = var.region
  job_image_tag = var.job_image_tag
  api_keys      = var.api_keys

  db_deletion_protection = var.db_deletion_protection

  # A development deployment: small and easy to tear down.
  db_availability_type  = "ZONAL"
  redis_tier            = "BASIC"
  submit_max_instances  = 5
  force_destroy_buckets = true
}

output "submit_url" {
  description = "HTTPS URL of the submit API."
  value       = module.podscribe.submit_url
}

output "image_repository" {
  description = "Artifact Registry repository to push the job image to."
  value       = module.podscribe.image_repository
}

output "job_image" {
  description = "Image reference dispatch launches."
  value       = module.podscribe.job_image
}

output "transcripts_bucket" {
  description = "Bucket holding transcripts."
  value       = module.podscribe.transcripts_bucket
}

output "jobs_topic" {
  description = "Pub/Sub topic that wakes dispatch."
  value       = module.podscribe.jobs_topic
}

output "job_service_account" {
  description = "Service account the Vertex AI job runs as."
  value       = module.podscribe.job_service_account
}

output "api_keys_secret" {
  description = "Secret holding the accepted API keys."
  value       = module.podscribe.api_keys_secret
}

output "cloudsql_instance" {
  description = "Cloud SQL instance name."
  value       = module.podscribe.cloudsql_instance
}

output "database_bootstrap_sql" {
  description = "SQL to run once as the postgres user."
  value       = module.podscribe.database_bootstrap_sql
}

output "migration_job_config" {
  description = "CustomJobSpec that applies the migrations."
  value       = module.podscribe.migration_job_config
}
