variable "project_id" {
  type        = string
  description = "Project the functions run in."
}

variable "region" {
  type        = string
  description = "Region of the functions."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must look like us-central1."
  }
}

variable "name_prefix" {
  type        = string
  description = "Prefix of the functions' and service accounts' names."

  validation {
    condition     = can(regex("^[a-z][-a-z0-9]{2,19}$", var.name_prefix))
    error_message = "name_prefix must be 3-20 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels put on the functions."
  default     = {}
}

variable "runtime" {
  type        = string
  description = "Cloud Functions Python runtime."
  default     = "python311"

  validation {
    condition     = can(regex("^python3[0-9]+$", var.runtime))
    error_message = "runtime must be a Python runtime such as python311."
  }
}

variable "build_service_account" {
  type        = string
  description = "Service account Cloud Build uses to build the functions (`projects/P/serviceAccounts/EMAIL`); null: the module's own build account."
  default     = null
}

variable "sources_bucket" {
  type        = string
  description = "Bucket the bundles are uploaded to."
}

variable "submit_bundle_path" {
  type        = string
  description = "Local path of the submit bundle built by `nox -s bundles`."

  validation {
    condition     = endswith(var.submit_bundle_path, ".zip")
    error_message = "submit_bundle_path must name a .zip file."
  }
}

variable "dispatch_bundle_path" {
  type        = string
  description = "Local path of the dispatch bundle (dispatch and sweep) built by `nox -s bundles`."

  validation {
    condition     = endswith(var.dispatch_bundle_path, ".zip")
    error_message = "dispatch_bundle_path must name a .zip file."
  }
}

variable "network_id" {
  type        = string
  description = "VPC network the functions' Direct VPC egress joins (Cloud SQL, Redis)."
}

variable "functions_subnetwork_id" {
  type        = string
  description = "Subnet of that network the functions' instances take addresses from."
}

variable "jobs_topic_id" {
  type        = string
  description = "Id of the jobs topic submit publishes to (`projects/P/topics/T`)."
}

variable "jobs_topic_name" {
  type        = string
  description = "Short name of the jobs topic (`PODSCRIBE_PUBSUB_TOPIC`)."
}

variable "transcripts_bucket" {
  type        = string
  description = "Transcripts bucket (`PODSCRIBE_BUCKET`)."
}

variable "cloudsql_connection_name" {
  type        = string
  description = "Cloud SQL `project:region:instance` (`CLOUDSQL_CONNECTION_NAME`)."

  validation {
    condition     = length(split(":", var.cloudsql_connection_name)) == 3
    error_message = "cloudsql_connection_name must be project:region:instance."
  }
}

variable "database_name" {
  type        = string
  description = "Database name (`PODSCRIBE_DB_NAME`)."
}

variable "api_keys_secret_id" {
  type        = string
  description = "Secret holding the API keys (`PODSCRIBE_API_KEYS`)."
}

variable "redis_url_secret_id" {
  type        = string
  description = "Secret holding the Redis URL (`PODSCRIBE_REDIS_URL`)."
}

variable "job_service_account_email" {
  type        = string
  description = "Service account the Vertex AI job runs as (`PODSCRIBE_VERTEX_SERVICE_ACCOUNT`)."
}

variable "job_service_account_name" {
  type        = string
  description = "Full resource name of the job's service account; dispatch may act as it."
}

variable "job_image" {
  type        = string
  description = "Job container image (`PODSCRIBE_VERTEX_IMAGE`)."

  validation {
    condition     = can(regex("^[a-z0-9.-]+(:[0-9]+)?/.+", var.job_image))
    error_message = "job_image must be a registry path such as us-central1-docker.pkg.dev/P/R/vertex-job:TAG."
  }
}

variable "vertex_network_attachment" {
  type        = string
  description = "Network attachment (name, in every job region) the job joins with a PSC interface (`PODSCRIBE_VERTEX_NETWORK_ATTACHMENT`)."

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$", var.vertex_network_attachment))
    error_message = "vertex_network_attachment must be a network attachment name."
  }
}

variable "vertex_machine_type" {
  type        = string
  description = "Machine type of the job's worker."
}

variable "vertex_accelerator_type" {
  type        = string
  description = "GPU type of the job's worker."
}

variable "worker_idle_seconds" {
  type        = number
  description = "How long a job waits for another episode after its own (warm worker); 0 exits after one."
}

variable "vertex_accelerator_count" {
  type        = number
  description = "GPUs per worker."
}

variable "vertex_fallbacks" {
  type        = list(string)
  description = "`region/machine_type/accelerator` entries tried when GPUs run out."
  default     = []
}

variable "whisper_model" {
  type        = string
  description = "faster-whisper model the job loads (name, or a path baked into the job image)."
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

variable "submit_memory" {
  type        = string
  description = "Memory of a submit instance, e.g. `512Mi`."
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.submit_memory))
    error_message = "submit_memory must look like 512Mi or 1Gi."
  }
}

variable "submit_timeout_seconds" {
  type        = number
  description = "Longest a submit request may take."
  default     = 60

  validation {
    condition     = var.submit_timeout_seconds >= 1 && var.submit_timeout_seconds <= 3600
    error_message = "submit_timeout_seconds must be between 1 and 3600."
  }
}

variable "submit_min_instances" {
  type        = number
  description = "Warm submit instances (0 scales to zero)."
  default     = 0

  validation {
    condition     = var.submit_min_instances >= 0
    error_message = "submit_min_instances must not be negative."
  }
}

variable "submit_max_instances" {
  type        = number
  description = "Most submit instances (bounds Cloud SQL connections)."
  default     = 20

  validation {
    condition     = var.submit_max_instances >= 1
    error_message = "submit_max_instances must be at least 1."
  }
}

variable "dispatch_memory" {
  type        = string
  description = "Memory of a dispatch or sweep instance."
  default     = "512Mi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi)$", var.dispatch_memory))
    error_message = "dispatch_memory must look like 512Mi or 1Gi."
  }
}

variable "dispatch_timeout_seconds" {
  type        = number
  description = "Longest one dispatch or sweep run may take (keep it under the subscription's ack deadline)."
  default     = 120

  validation {
    condition     = var.dispatch_timeout_seconds >= 1 && var.dispatch_timeout_seconds <= 540
    error_message = "dispatch_timeout_seconds must be between 1 and 540."
  }
}

variable "dispatch_max_instances" {
  type        = number
  description = "Most dispatch instances."
  default     = 5

  validation {
    condition     = var.dispatch_max_instances >= 1
    error_message = "dispatch_max_instances must be at least 1."
  }
}

variable "webhook_secret_id" {
  type        = string
  description = "Short id of the webhook signing secret that dispatch, the sweep (and, through dispatch, the job) read."
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
