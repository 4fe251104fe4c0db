# podscribe on Google Cloud: submit (HTTP) -> Cloud SQL + Pub/Sub -> dispatch -> Vertex AI
# CustomJob (GPU) -> transcripts in Cloud Storage. One module per concern; this file only
# wires them together. Build the function bundles first (`nox -s bundles`).

locals {
  bundles_dir             = coalesce(var.bundles_dir, "${path.module}/../build/bundles")
  transcripts_bucket_name = coalesce(var.transcripts_bucket_name, "${var.project_id}-${var.name_prefix}-transcripts")
  sources_bucket_name     = coalesce(var.sources_bucket_name, "${var.project_id}-${var.name_prefix}-sources")
  job_image               = "${module.job.repository_url}/${var.job_image_name}:${var.job_image_tag}"
  labels                  = merge({ app = "podscribe" }, var.labels)

  # Every region a job may be placed in (the configured one, then each fallback's) gets a
  # subnet and a network attachment; each takes the next /24 of vertex_jobs_cidr.
  vertex_regions     = distinct(concat([var.region], [for entry in var.vertex_fallbacks : split("/", entry)[0]]))
  vertex_job_subnets = { for index, region in local.vertex_regions : region => cidrsubnet(var.vertex_jobs_cidr, 24 - tonumber(split("/", var.vertex_jobs_cidr)[1]), index) }

  apis = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    # Every project-level IAM grant (and any read of the project) goes through Resource Manager.
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "redis.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "servicenetworking.googleapis.com",
    "sqladmin.googleapis.com",
  ]
}

resource "google_project_service" "apis" {
  for_each = toset(local.apis)

  project = var.project_id
  service = each.value
  # Other workloads in the project may use the same APIs: never turn them off on destroy.
  disable_on_destroy = false
}

module "network" {
  source = "./modules/network"

  project_id              = var.project_id
  region                  = var.region
  network_name            = "${var.name_prefix}-vpc"
  functions_subnet_cidr   = var.functions_subnet_cidr
  vertex_job_subnets      = local.vertex_job_subnets
  network_attachment_name = "${var.name_prefix}-vertex-jobs"

  depends_on = [google_project_service.apis]
}

module "storage" {
  source = "./modules/storage"

  project_id                  = var.project_id
  location                    = var.region
  transcripts_bucket_name     = local.transcripts_bucket_name
  sources_bucket_name         = local.sources_bucket_name
  transcripts_lifecycle_rules = var.transcripts_lifecycle_rules
  force_destroy               = var.force_destroy_buckets
  labels                      = local.labels

  depends_on = [google_project_service.apis]
}

module "job" {
  source = "./modules/job"

  project_id         = var.project_id
  region             = var.region
  repository_id      = "${var.name_prefix}-images"
  service_account_id = "${var.name_prefix}-job"
  transcripts_bucket = module.storage.transcripts_bucket
  webhook_secret_id  = module.secrets.webhook_secret_id
  labels             = local.labels

  depends_on = [google_project_service.apis]
}

module "sql" {
  source = "./modules/sql"

  project_id                     = var.project_id
  region                         = var.region
  instance_name                  = "${var.name_prefix}-db"
  network_id                     = module.network.network_id
  database_name                  = var.database_name
  tier                           = var.db_tier
  edition                        = var.db_edition
  availability_type              = var.db_availability_type
  deletion_protection            = var.db_deletion_protection
  transaction_log_retention_days = var.db_transaction_log_retention_days
  labels                         = local.labels
  iam_service_accounts = {
    submit   = module.functions.submit_service_account_email
    dispatch = module.functions.dispatch_service_account_email
    sweep    = module.functions.sweep_service_account_email
    job      = module.job.service_account_email
  }

  # The private IP comes from the private services access range.
  depends_on = [module.network]
}

module "redis" {
  source = "./modules/redis"

  project_id     = var.project_id
  region         = var.region
  instance_name  = "${var.name_prefix}-ratelimit"
  network_id     = module.network.network_id
  tier           = var.redis_tier
  memory_size_gb = var.redis_memory_size_gb
  labels         = local.labels

  depends_on = [module.network]
}

module "secrets" {
  source = "./modules/secrets"

  project_id     = var.project_id
  name_prefix    = var.name_prefix
  api_keys       = var.api_keys
  webhook_secret = var.webhook_secret
  redis_url      = module.redis.redis_url
  labels         = local.labels

  depends_on = [google_project_service.apis]
}

module "functions" {
  source = "./modules/functions"

  project_id                = var.project_id
  region                    = var.region
  name_prefix               = var.name_prefix
  labels                    = local.labels
  build_service_account     = var.build_service_account
  sources_bucket            = module.storage.sources_bucket
  submit_bundle_path        = "${local.bundles_dir}/submit.zip"
  dispatch_bundle_path      = "${local.bundles_dir}/dispatch.zip"
  network_id                = module.network.network_id
  functions_subnetwork_id   = module.network.functions_subnetwork_id
  jobs_topic_id             = module.pubsub.jobs_topic_id
  jobs_topic_name           = module.pubsub.jobs_topic_name
  transcripts_bucket        = module.storage.transcripts_bucket
  cloudsql_connection_name  = module.sql.connection_name
  database_name             = var.database_name
  api_keys_secret_id        = module.secrets.api_keys_secret_id
  redis_url_secret_id       = module.secrets.redis_url_secret_id
  webhook_secret_id         = module.secrets.webhook_secret_id
  job_service_account_email = module.job.service_account_email
  job_service_account_name  = module.job.service_account_name
  job_image                 = local.job_image
  vertex_network_attachment = module.network.vertex_network_attachment
  vertex_machine_type       = var.vertex_machine_type
  vertex_accelerator_type   = var.vertex_accelerator_type
  vertex_accelerator_count  = var.vertex_accelerator_count
  worker_idle_seconds       = var.worker_idle_seconds
  vertex_fallbacks          = var.vertex_fallbacks
  whisper_model             = var.whisper_model
  log_level                 = var.log_level
  submit_max_instances      = var.submit_max_instances
  dispatch_max_instances    = var.dispatch_max_instances
  public_base_url           = var.public_base_url
  trusted_proxy_hops        = var.trusted_proxy_hops

  # The build and runtime accounts' grants go through APIs that must be on first.
  depends_on = [google_project_service.apis]
}

module "pubsub" {
  source = "./modules/pubsub"

  project_id                 = var.project_id
  region                     = var.region
  name_prefix                = var.name_prefix
  labels                     = local.labels
  dispatch_push_endpoint     = module.functions.dispatch_url
  sweep_push_endpoint        = module.functions.sweep_url
  push_service_account_email = module.functions.push_service_account_email
  max_delivery_attempts      = var.dispatch_max_delivery_attempts
  sweep_schedule             = var.sweep_schedule

  depends_on = [google_project_service.apis]
}

# --- one-off database set-up (see docs/deploy.md, "Bootstrap the database") -----------------

locals {
  db_users = module.sql.iam_users

  # IAM database users start with no privileges. The job's account owns the schema (it runs
  # the migrations); submit, dispatch and sweep get row access to whatever it creates.
  db_readers_writers = join(", ", [for part in ["submit", "dispatch", "sweep"] : "\"${local.db_users[part]}\""])
  database_bootstrap_sql = join("\n", [
    "-- Run once as the built-in postgres user, connected to database ${var.database_name}.",
    "GRANT \"${local.db_users["job"]}\" TO CURRENT_USER;",
    "GRANT USAGE, CREATE ON SCHEMA public TO \"${local.db_users["job"]}\";",
    "GRANT USAGE ON SCHEMA public TO ${local.db_readers_writers};",
    "ALTER DEFAULT PRIVILEGES FOR ROLE \"${local.db_users["job"]}\" IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${local.db_readers_writers};",
    "ALTER DEFAULT PRIVILEGES FOR ROLE \"${local.db_users["job"]}\" IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO ${local.db_readers_writers};",
    "",
  ])

  # The environment of the one-off migration run: every key is a settings field alias.
  migration_environment = {
    PODSCRIBE_ENV            = "production"
    PODSCRIBE_PROJECT_ID     = var.project_id
    PODSCRIBE_REGION         = var.region
    CLOUDSQL_CONNECTION_NAME = module.sql.connection_name
    PODSCRIBE_DB_NAME        = var.database_name
    PODSCRIBE_DB_USER        = local.db_users["job"]
    PODSCRIBE_DB_IP_TYPE     = "private"
  }

  # A Vertex AI CustomJobSpec for `gcloud ai custom-jobs create --config`: the job image
  # runs `python -m podscribe.db migrate` as the job's account, joined to the VPC through
  # the network attachment (a PSC interface), the same route to Cloud SQL the jobs take.
  migration_job_config = jsonencode({
    serviceAccount     = module.job.service_account_email
    pscInterfaceConfig = { networkAttachment = module.network.vertex_network_attachment }
    workerPoolSpecs = [{
      machineSpec  = { machineType = "e2-standard-4" }
      replicaCount = 1
      containerSpec = {
        imageUri = local.job_image
        command  = ["python", "-m", "podscribe.db", "migrate"]
        env      = [for name, value in local.migration_environment : { name = name, value = value }]
      }
    }]
  })
}
