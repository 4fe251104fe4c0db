variable "project_id" {
  type        = string
  description = "Project that holds the instance."
}

variable "region" {
  type        = string
  description = "Region of the instance (the functions' region)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "instance_name" {
  type        = string
  description = "Name of the Memorystore instance."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,38}[a-z0-9]$", var.instance_name))
    error_message = "instance_name must be 2-40 lowercase letters, digits or hyphens."
  }
}

variable "network_id" {
  type        = string
  description = "VPC network with private services access the instance joins."
}

variable "tier" {
  type        = string
  description = "`BASIC` (one node) or `STANDARD_HA` (a replica that takes over)."
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.tier)
    error_message = "tier must be BASIC or STANDARD_HA."
  }
}

variable "memory_size_gb" {
  type        = number
  description = "Memory of the instance in GiB."
  default     = 1

  validation {
    condition     = var.memory_size_gb >= 1 && var.memory_size_gb <= 300
    error_message = "memory_size_gb must be between 1 and 300."
  }
}

variable "redis_version" {
  type        = string
  description = "Redis version, e.g. `REDIS_7_2`."
  default     = "REDIS_7_2"

  validation {
    condition     = can(regex("^REDIS_[0-9]+(_[0-9]+)?$", var.redis_version))
    error_message = "redis_version must look like REDIS_7_2."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the instance."
  default     = {}
}
