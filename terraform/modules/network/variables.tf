variable "project_id" {
  type        = string
  description = "Project that holds the network."
}

variable "region" {
  type        = string
  description = "Region of the functions' subnet (the functions' region)."

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
  description = "Prefix length of the range allocated to private services access (Cloud SQL, Memorystore)."
  default     = 16

  validation {
    condition     = var.private_services_prefix_length >= 8 && var.private_services_prefix_length <= 24
    error_message = "private_services_prefix_length must be between 8 and 24."
  }
}

variable "functions_subnet_cidr" {
  type        = string
  description = "Unused IPv4 range of the network for the functions' Direct VPC egress (a /26 at least; /24 serves about 100 instances)."
  default     = "10.8.0.0/24"

  validation {
    condition     = can(cidrnetmask(var.functions_subnet_cidr)) && tonumber(split("/", var.functions_subnet_cidr)[1]) <= 26
    error_message = "functions_subnet_cidr must be an IPv4 range of /26 or larger."
  }
}

variable "vertex_job_subnets" {
  type        = map(string)
  description = "Region -> unused IPv4 range of the subnet behind that region's network attachment, for every region a Vertex AI job may run in (one address per running job)."

  validation {
    condition     = length(var.vertex_job_subnets) > 0 && alltrue([for region, cidr in var.vertex_job_subnets : can(regex("^[a-z]+-[a-z]+[0-9]+$", region)) && can(cidrnetmask(cidr))])
    error_message = "vertex_job_subnets must map at least one region (like us-central1) to an IPv4 range."
  }
}

variable "network_attachment_name" {
  type        = string
  description = "Name of the network attachment in every job region (Vertex resolves it in the job's region)."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.network_attachment_name))
    error_message = "network_attachment_name must be a valid Compute Engine resource name."
  }
}
