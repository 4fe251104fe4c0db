variable "project_id" {
  type        = string
  description = "Project that holds the buckets."
}

variable "location" {
  type        = string
  description = "Location of both buckets (the region of the functions and the job keeps traffic local)."
}

variable "transcripts_bucket_name" {
  type        = string
  description = "Globally unique name of the transcripts bucket."

  validation {
    condition     = can(regex("^[a-z0-9][-_a-z0-9]{1,61}[a-z0-9]$", var.transcripts_bucket_name))
    error_message = "transcripts_bucket_name must be a valid bucket name (3-63 characters, no dots)."
  }
}

variable "sources_bucket_name" {
  type        = string
  description = "Globally unique name of the bucket the function bundles are uploaded to."

  validation {
    condition     = can(regex("^[a-z0-9][-_a-z0-9]{1,61}[a-z0-9]$", var.sources_bucket_name))
    error_message = "sources_bucket_name must be a valid bucket name (3-63 characters, no dots)."
  }
}

variable "transcripts_lifecycle_rules" {
  type = list(object({
    action                     = string
    storage_class              = optional(string)
    age_days                   = optional(number)
    days_since_noncurrent_time = optional(number)
    with_state                 = optional(string)
    matches_prefix             = optional(list(string))
  }))
  description = "Lifecycle rules of the transcripts bucket: `action` is `Delete` or `SetStorageClass` (then `storage_class` is required), conditions as in the Cloud Storage API."
  default = [
    { action = "SetStorageClass", storage_class = "NEARLINE", age_days = 30 },
    { action = "Delete", days_since_noncurrent_time = 7, with_state = "ARCHIVED" },
  ]

  validation {
    condition = alltrue([
      for rule in var.transcripts_lifecycle_rules :
      contains(["Delete", "SetStorageClass"], rule.action) &&
      (rule.action != "SetStorageClass" || rule.storage_class != null)
    ])
    error_message = "Each rule's action must be Delete or SetStorageClass, and SetStorageClass needs storage_class."
  }
}

variable "force_destroy" {
  type        = bool
  description = "Let `terraform destroy` delete buckets that still hold objects."
  default     = false
}

variable "labels" {
  type        = map(string)
  description = "Labels put on both buckets."
  default     = {}
}
