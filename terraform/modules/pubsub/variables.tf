variable "project_id" {
  type        = string
  description = "Project that holds the topics and subscriptions."
}

variable "region" {
  type        = string
  description = "Region of the Cloud Scheduler job."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every topic, subscription and scheduler job name."
}

variable "labels" {
  type        = map(string)
  description = "Labels put on topics and subscriptions."
  default     = {}
}

variable "dispatch_push_endpoint" {
  type        = string
  description = "HTTPS URL of the dispatch function; the jobs subscription pushes there."

  validation {
    condition     = startswith(var.dispatch_push_endpoint, "https://")
    error_message = "dispatch_push_endpoint must be an https:// URL."
  }
}

variable "sweep_push_endpoint" {
  type        = string
  description = "HTTPS URL of the sweep function; the sweep subscription pushes there."

  validation {
    condition     = startswith(var.sweep_push_endpoint, "https://")
    error_message = "sweep_push_endpoint must be an https:// URL."
  }
}

variable "push_service_account_email" {
  type        = string
  description = "Service account whose OIDC token Pub/Sub attaches to pushes (it may invoke dispatch and sweep, nothing else)."
}

variable "ack_deadline_seconds" {
  type        = number
  description = "How long Pub/Sub waits for a push to be answered before retrying it."
  default     = 120

  validation {
    condition     = var.ack_deadline_seconds >= 10 && var.ack_deadline_seconds <= 600
    error_message = "ack_deadline_seconds must be between 10 and 600."
  }
}

variable "message_retention_duration" {
  type        = string
  description = "How long an unacknowledged wake-up is kept, e.g. `86400s`."
  default     = "86400s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.message_retention_duration))
    error_message = "message_retention_duration must be a number of seconds like 86400s."
  }
}

variable "minimum_backoff" {
  type        = string
  description = "Shortest wait before a failed push is retried."
  default     = "10s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.minimum_backoff))
    error_message = "minimum_backoff must be a number of seconds like 10s."
  }
}

variable "maximum_backoff" {
  type        = string
  description = "Longest wait before a failed push is retried."
  default     = "600s"

  validation {
    condition     = can(regex("^[0-9]+s$", var.maximum_backoff))
    error_message = "maximum_backoff must be a number of seconds like 600s."
  }
}

variable "max_delivery_attempts" {
  type        = number
  description = "Deliveries of a jobs message before it goes to the dead-letter topic."
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "sweep_schedule" {
  type        = string
  description = "Cron schedule (UTC) of the sweep."
  default     = "*/5 * * * *"

  validation {
    condition     = length(split(" ", var.sweep_schedule)) == 5
    error_message = "sweep_schedule must be a five-field cron expression."
  }
}
