variable "project_id" {
  type        = string
  description = "Project that holds the network."
}

variable "region" {
  type        = string
  description = "Region of the Serverless VPC Access connector (the functions' region)."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "network_name" {
  type        = string
  description = "Name of the VPC network."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.network_name))
    error_message = "network_name must be a valid Compute Engine resource name."
  }
}

variable "private_services_prefix_length" {
  type        = number
  description = "Prefix length of the range allocated to private services access (Cloud SQL, Memorystore, Vertex AI)."
  default     = 16

  validation {
    condition     = var.private_services_prefix_length >= 8 && var.private_services_prefix_length <= 24
    error_message = "private_services_prefix_length must be between 8 and 24."
  }
}

variable "connector_name" {
  type        = string
  description = "Name of the Serverless VPC Access connector (at most 25 characters)."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{0,23}[a-z0-9]$", var.connector_name))
    error_message = "connector_name must be 2-25 lowercase letters, digits or hyphens."
  }
}

variable "connector_cidr" {
  type        = string
  description = "Unused /28 range of the network for the connector's instances."
  default     = "10.8.0.0/28"

  validation {
    condition     = can(cidrnetmask(var.connector_cidr)) && endswith(var.connector_cidr, "/28")
    error_message = "connector_cidr must be an IPv4 /28 range."
  }
}

variable "connector_machine_type" {
  type        = string
  description = "Machine type of the connector's instances."
  default     = "e2-micro"

  validation {
    condition     = contains(["f1-micro", "e2-micro", "e2-standard-4"], var.connector_machine_type)
    error_message = "connector_machine_type must be f1-micro, e2-micro or e2-standard-4."
  }
}

variable "connector_min_instances" {
  type        = number
  description = "Fewest connector instances."
  default     = 2

  validation {
    condition     = var.connector_min_instances >= 2 && var.connector_min_instances <= 9
    error_message = "connector_min_instances must be between 2 and 9."
  }
}

variable "connector_max_instances" {
  type        = number
  description = "Most connector instances."
  default     = 3

  validation {
    condition     = var.connector_max_instances >= 3 && var.connector_max_instances <= 10
    error_message = "connector_max_instances must be between 3 and 10."
  }
}
