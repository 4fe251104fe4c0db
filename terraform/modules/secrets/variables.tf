variable "project_id" {
  type        = string
  description = "Project that holds the secrets."
}

variable "name_prefix" {
  type        = string
  description = "Prefix of the secrets' ids."
}

variable "api_keys" {
  type        = string
  description = "Comma-separated API keys for the first version of the API-keys secret; null leaves the secret empty for `gcloud secrets versions add`."
  default     = null
  sensitive   = true

  validation {
    condition     = var.api_keys == null ? true : length(trimspace(var.api_keys)) > 0
    error_message = "api_keys must be null or hold at least one key."
  }
}

variable "redis_url" {
  type        = string
  description = "Redis URL (with AUTH string) stored as the Redis secret's version."
  sensitive   = true
}

variable "webhook_secret" {
  type        = string
  description = "Webhook signing secret for the first version of its secret; null leaves it empty for `gcloud secrets versions add`."
  default     = null
  sensitive   = true

  validation {
    condition     = var.webhook_secret == null ? true : length(var.webhook_secret) >= 32
    error_message = "webhook_secret must be null or at least 32 characters."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the secrets."
  default     = {}
}
