variable "project_id" {
  type        = string
  description = "Project that holds the repository and the service account."
}

variable "region" {
  type        = string
  description = "Region of the Docker repository (the Vertex AI jobs' region)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "repository_id" {
  type        = string
  description = "Id of the Artifact Registry Docker repository."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.repository_id))
    error_message = "repository_id must be lowercase letters, digits and hyphens."
  }
}

variable "service_account_id" {
  type        = string
  description = "Account id (the part before @) of the job's service account."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id must be 6-30 lowercase letters, digits or hyphens."
  }
}

variable "transcripts_bucket" {
  type        = string
  description = "Bucket the job writes transcripts and checkpoints to."
}

variable "immutable_tags" {
  type        = bool
  description = "Refuse to move a tag once pushed (deploy by new tag or digest)."
  default     = false
}

variable "keep_image_versions" {
  type        = number
  description = "Most recent image versions the cleanup policy keeps."
  default     = 10

  validation {
    condition     = var.keep_image_versions >= 1
    error_message = "keep_image_versions must be at least 1."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the repository."
  default     = {}
}

variable "webhook_secret_id" {
  type        = string
  description = "Short id of the webhook signing secret the job reads."
}
