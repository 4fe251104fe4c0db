variable "project_id" {
  type        = string
  description = "Project that holds the instance."
}

variable "region" {
  type        = string
  description = "Region of the instance."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "instance_name" {
  type        = string
  description = "Name of the Cloud SQL instance."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,96}[a-z0-9]$", var.instance_name))
    error_message = "instance_name must be lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "network_id" {
  type        = string
  description = "VPC network (with private services access) the instance's private IP lives in."
}

variable "database_name" {
  type        = string
  description = "Name of the application database (`PODSCRIBE_DB_NAME`)."
  default     = "podscribe"
}

variable "iam_service_accounts" {
  type        = map(string)
  description = "Service accounts that log in with IAM database authentication, keyed by part (submit, dispatch, job)."

  validation {
    condition     = alltrue([for email in values(var.iam_service_accounts) : endswith(email, ".gserviceaccount.com")])
    error_message = "iam_service_accounts must be service account emails."
  }
}

variable "tier" {
  type        = string
  description = "Machine tier, e.g. `db-custom-1-3840` (Enterprise) or `db-perf-optimized-N-2` (Enterprise Plus)."
  default     = "db-custom-1-3840"

  validation {
    condition     = can(regex("^db-", var.tier))
    error_message = "tier must be a Cloud SQL tier starting with db-."
  }
}

variable "edition" {
  type        = string
  description = "Cloud SQL edition: `ENTERPRISE` or `ENTERPRISE_PLUS`."
  default     = "ENTERPRISE"

  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.edition)
    error_message = "edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
}

variable "availability_type" {
  type        = string
  description = "`ZONAL` or `REGIONAL` (a standby in a second zone)."
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.availability_type)
    error_message = "availability_type must be ZONAL or REGIONAL."
  }
}

variable "disk_size_gb" {
  type        = number
  description = "Initial disk size; it grows automatically."
  default     = 10

  validation {
    condition     = var.disk_size_gb >= 10
    error_message = "disk_size_gb must be at least 10."
  }
}

variable "backup_start_time" {
  type        = string
  description = "UTC start of the daily backup window, `HH:MM`."
  default     = "03:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup_start_time))
    error_message = "backup_start_time must be HH:MM."
  }
}

variable "retained_backups" {
  type        = number
  description = "Daily backups kept."
  default     = 7

  validation {
    condition     = var.retained_backups >= 1 && var.retained_backups <= 365
    error_message = "retained_backups must be between 1 and 365."
  }
}

variable "transaction_log_retention_days" {
  type        = number
  description = "Days of write-ahead log kept for point-in-time recovery."
  default     = 7

  validation {
    condition     = var.transaction_log_retention_days >= 1 && var.transaction_log_retention_days <= 35
    error_message = "transaction_log_retention_days must be between 1 and 35."
  }
}

variable "deletion_protection" {
  type        = bool
  description = "Refuse to delete the instance (both Terraform's guard and the API's)."
  default     = true
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the instance."
  default     = {}
}
