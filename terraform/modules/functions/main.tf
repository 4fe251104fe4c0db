# The three Cloud Functions (gen2) and the identities they run as.
#
#   submit   HTTP, public ingress; callers are checked by the function itself
#            (`Authorization: Bearer <key>` against PODSCRIBE_API_KEYS from Secret Manager).
#   dispatch CloudEvent target, internal ingress only; woken by the jobs push subscription.
#   sweep    CloudEvent target of the dispatch bundle, internal ingress only; woken by the
#            sweep push subscription that Cloud Scheduler feeds.
#
# Each function has its own service account holding only the roles it uses; every grant the
# functions need is in this file, next to the account it is for.

locals {
  sa_suffix              = ".gserviceaccount.com"
  webhook_secret_version = "projects/${var.project_id}/secrets/${var.webhook_secret_id}/versions/latest"
  # Links in job documents, webhooks and the OpenAPI `servers` entry never follow a request's
  # Host header: a custom domain when given, else submit's own gen2 URL, known before it
  # exists (https://REGION-PROJECT.cloudfunctions.net/NAME, the function's `url` attribute).
  public_base_url = (
    var.public_base_url != ""
    ? trimsuffix(var.public_base_url, "/")
    : "https://${var.region}-${var.project_id}.cloudfunctions.net/${var.name_prefix}-submit"
  )

  # Every key is a field alias of podscribe.settings.Settings (tests/unit/test_terraform.py
  # checks it). Values that differ per deployment come from variables.
  submit_environment = {
    PODSCRIBE_ENV             = "production"
    PODSCRIBE_LOG_LEVEL       = var.log_level
    PODSCRIBE_PROJECT_ID      = var.project_id
    PODSCRIBE_REGION          = var.region
    CLOUDSQL_CONNECTION_NAME  = var.cloudsql_connection_name
    PODSCRIBE_DB_NAME         = var.database_name
    PODSCRIBE_DB_USER         = trimsuffix(google_service_account.submit.email, local.sa_suffix)
    PODSCRIBE_DB_IP_TYPE      = "private"
    PODSCRIBE_PUBSUB_TOPIC    = var.jobs_topic_name
    PODSCRIBE_BUCKET          = var.transcripts_bucket
    PODSCRIBE_PUBLIC_BASE_URL = local.public_base_url
    # Submit derives each key's webhook secret from the master (GET /v1/webhook-secret), and
    # reads it as the job and the sweep do: through the API, never from its environment.
    PODSCRIBE_WEBHOOK_SECRET_VERSION = local.webhook_secret_version
    # Gen2 functions sit behind Google's front end, the one proxy that appends the client's
    # address to X-Forwarded-For (and sets X-Forwarded-Proto); what is left of it is the
    # client's own claim. A load balancer in front of a custom domain adds a second hop.
    PODSCRIBE_TRUSTED_PROXY_HOPS = tostring(var.trusted_proxy_hops)
    # Job rows record the model that will transcribe them (and production refuses none).
    WHISPER_MODEL = var.whisper_model
  }

  dispatch_environment = {
    PODSCRIBE_ENV                       = "production"
    PODSCRIBE_LOG_LEVEL                 = var.log_level
    PODSCRIBE_PROJECT_ID                = var.project_id
    PODSCRIBE_REGION                    = var.region
    CLOUDSQL_CONNECTION_NAME            = var.cloudsql_connection_name
    PODSCRIBE_DB_NAME                   = var.database_name
    PODSCRIBE_DB_USER                   = trimsuffix(google_service_account.dispatch.email, local.sa_suffix)
    PODSCRIBE_DB_IP_TYPE                = "private"
    PODSCRIBE_BUCKET                    = var.transcripts_bucket
    PODSCRIBE_LAUNCHER                  = "vertex"
    PODSCRIBE_VERTEX_IMAGE              = var.job_image
    PODSCRIBE_VERTEX_SERVICE_ACCOUNT    = var.job_service_account_email
    PODSCRIBE_VERTEX_NETWORK_ATTACHMENT = var.vertex_network_attachment
    PODSCRIBE_VERTEX_MACHINE_TYPE       = var.vertex_machine_type
    PODSCRIBE_VERTEX_ACCELERATOR_TYPE   = var.vertex_accelerator_type
    PODSCRIBE_VERTEX_ACCELERATOR_COUNT  = tostring(var.vertex_accelerator_count)
    PODSCRIBE_VERTEX_FALLBACKS          = join(",", var.vertex_fallbacks)
    # Forwarded into the job's environment by the Vertex launcher, like the model below:
    # a job stays this long for the next episode, which dispatch hands it with no launch.
    PODSCRIBE_WORKER_IDLE_SECONDS = tostring(var.worker_idle_seconds)
    # Forwarded into the job's environment by the Vertex launcher: the image's baked model.
    WHISPER_MODEL = var.whisper_model
    # A resource name, not the secret: dispatch and the job read the value through the API.
    PODSCRIBE_WEBHOOK_SECRET_VERSION = local.webhook_secret_version
    # Webhook bodies link the transcripts; the Vertex launcher passes it on to the job.
    PODSCRIBE_PUBLIC_BASE_URL = local.public_base_url
  }

  # The sweep reads launched jobs' states through the same launcher settings and re-publishes
  # wake-ups that were lost, so it also knows the jobs topic.
  sweep_environment = {
    PODSCRIBE_ENV                       = "production"
    PODSCRIBE_LOG_LEVEL                 = var.log_level
    PODSCRIBE_PROJECT_ID                = var.project_id
    PODSCRIBE_REGION                    = var.region
    CLOUDSQL_CONNECTION_NAME            = var.cloudsql_connection_name
    PODSCRIBE_DB_NAME                   = var.database_name
    PODSCRIBE_DB_USER                   = trimsuffix(google_service_account.sweep.email, local.sa_suffix)
    PODSCRIBE_DB_IP_TYPE                = "private"
    PODSCRIBE_BUCKET                    = var.transcripts_bucket
    PODSCRIBE_PUBSUB_TOPIC              = var.jobs_topic_name
    PODSCRIBE_LAUNCHER                  = "vertex"
    PODSCRIBE_VERTEX_IMAGE              = var.job_image
    PODSCRIBE_VERTEX_SERVICE_ACCOUNT    = var.job_service_account_email
    PODSCRIBE_VERTEX_NETWORK_ATTACHMENT = var.vertex_network_attachment
    PODSCRIBE_VERTEX_MACHINE_TYPE       = var.vertex_machine_type
    PODSCRIBE_VERTEX_ACCELERATOR_TYPE   = var.vertex_accelerator_type
    PODSCRIBE_VERTEX_ACCELERATOR_COUNT  = tostring(var.vertex_accelerator_count)
    PODSCRIBE_VERTEX_FALLBACKS          = join(",", var.vertex_fallbacks)
    PODSCRIBE_WEBHOOK_SECRET_VERSION    = local.webhook_secret_version
    PODSCRIBE_PUBLIC_BASE_URL           = local.public_base_url
    # A relaunch passes the deployment's model on, as dispatch does.
    WHISPER_MODEL = var.whisper_model
  }
}

# --- identities ----------------------------------------------------------------------------

resource "google_service_account" "submit" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-submit"
  display_name = "podscribe submit function"
}

resource "google_service_account" "dispatch" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-dispatch"
  display_name = "podscribe dispatch function"
}

resource "google_service_account" "sweep" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-sweep"
  display_name = "podscribe sweep function"
}

# The identity Pub/Sub mints OIDC tokens for when it pushes to dispatch and sweep: it may
# invoke those two services and nothing else.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "podscribe Pub/Sub push invoker"
}

# --- submit: Cloud SQL, publish wake-ups, read transcripts, read its two secrets ---------------

resource "google_project_iam_member" "submit_cloudsql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.submit.email}"
}

resource "google_project_iam_member" "submit_cloudsql_instance_user" {
  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = "serviceAccount:${google_service_account.submit.email}"
}

resource "google_pubsub_topic_iam_member" "submit_publisher" {
  project = var.project_id
  topic   = var.jobs_topic_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.submit.email}"
}

resource "google_storage_bucket_iam_member" "submit_object_viewer" {
  bucket = var.transcripts_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.submit.email}"
}

resource "google_secret_manager_secret_iam_member" "submit_api_keys" {
  project   = var.project_id
  secret_id = var.api_keys_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.submit.email}"
}

resource "google_secret_manager_secret_iam_member" "submit_redis_url" {
  project   = var.project_id
  secret_id = var.redis_url_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.submit.email}"
}

# --- dispatch: claim rows, launch Vertex AI jobs as the job's account --------------------------

resource "google_project_iam_member" "dispatch_aiplatform_user" {
  project = var.project_id
  role    = "roles/aiplatform.user"
  member  = "serviceAccount:${google_service_account.dispatch.email}"
}

resource "google_project_iam_member" "dispatch_cloudsql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.dispatch.email}"
}

resource "google_project_iam_member" "dispatch_cloudsql_instance_user" {
  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = "serviceAccount:${google_service_account.dispatch.email}"
}

# Act-as on the job's account only: launching a CustomJob that runs as an account needs
# iam.serviceAccounts.actAs on that account, and on no other.
resource "google_service_account_iam_member" "dispatch_acts_as_job" {
  service_account_id = var.job_service_account_name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.dispatch.email}"
}

# --- sweep: read launched jobs' states, re-queue rows, re-publish lost wake-ups --------------

resource "google_project_iam_member" "sweep_aiplatform_viewer" {
  project = var.project_id
  role    = "roles/aiplatform.viewer"
  member  = "serviceAccount:${google_service_account.sweep.email}"
}

resource "google_project_iam_member" "sweep_cloudsql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.sweep.email}"
}

resource "google_project_iam_member" "sweep_cloudsql_instance_user" {
  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = "serviceAccount:${google_service_account.sweep.email}"
}

resource "google_secret_manager_secret_iam_member" "submit_webhook_secret" {
  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.submit.email}"
}

resource "google_secret_manager_secret_iam_member" "dispatch_webhook_secret" {
  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.dispatch.email}"
}

resource "google_secret_manager_secret_iam_member" "sweep_webhook_secret" {
  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.sweep.email}"
}

resource "google_pubsub_topic_iam_member" "sweep_publisher" {
  project = var.project_id
  topic   = var.jobs_topic_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.sweep.email}"
}

# --- sources -------------------------------------------------------------------------------

# Named by content hash: a new bundle is a new object, which redeploys the function.
resource "google_storage_bucket_object" "submit" {
  bucket = var.sources_bucket
  name   = "submit-${filemd5(var.submit_bundle_path)}.zip"
  source = var.submit_bundle_path
}

resource "google_storage_bucket_object" "dispatch" {
  bucket = var.sources_bucket
  name   = "dispatch-${filemd5(var.dispatch_bundle_path)}.zip"
  source = var.dispatch_bundle_path
}

# --- functions -----------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "submit" {
  #checkov:skip=CKV_GCP_124: submit is the public HTTPS API (ALLOW_ALL); every request without a valid API key is refused by the function
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-submit"
  description = "podscribe HTTP API: submit, poll and fetch transcriptions."
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "submit"
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = var.sources_bucket
        object = google_storage_bucket_object.submit.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.submit.email
    ingress_settings               = "ALLOW_ALL"
    all_traffic_on_latest_revision = true
    available_memory               = var.submit_memory
    timeout_seconds                = var.submit_timeout_seconds
    min_instance_count             = var.submit_min_instances
    max_instance_count             = var.submit_max_instances
    # Direct VPC egress: instances take addresses in the functions' subnet, no connector
    # VMs run while nothing does. Only private ranges (Cloud SQL, Redis) go through the VPC;
    # Apple lookups and feeds go straight out, through the SSRF guard.
    direct_vpc_network_interface {
      network    = var.network_id
      subnetwork = var.functions_subnetwork_id
    }
    direct_vpc_egress     = "VPC_EGRESS_PRIVATE_RANGES_ONLY"
    environment_variables = local.submit_environment

    secret_environment_variables {
      key        = "PODSCRIBE_API_KEYS"
      project_id = var.project_id
      secret     = var.api_keys_secret_id
      version    = "latest"
    }

    secret_environment_variables {
      key        = "PODSCRIBE_REDIS_URL"
      project_id = var.project_id
      secret     = var.redis_url_secret_id
      version    = "latest"
    }
  }

  # The deployment checks that the runtime account can read its secrets.
  depends_on = [
    google_secret_manager_secret_iam_member.submit_api_keys,
    google_secret_manager_secret_iam_member.submit_redis_url,
  ]
}

resource "google_cloudfunctions2_function" "dispatch" {
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-dispatch"
  description = "podscribe dispatch: claims queued jobs and launches Vertex AI CustomJobs."
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "dispatch"
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = var.sources_bucket
        object = google_storage_bucket_object.dispatch.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.dispatch.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = var.dispatch_memory
    timeout_seconds                = var.dispatch_timeout_seconds
    min_instance_count             = 0
    max_instance_count             = var.dispatch_max_instances
    direct_vpc_network_interface {
      network    = var.network_id
      subnetwork = var.functions_subnetwork_id
    }
    direct_vpc_egress     = "VPC_EGRESS_PRIVATE_RANGES_ONLY"
    environment_variables = local.dispatch_environment
  }
}

resource "google_cloudfunctions2_function" "sweep" {
  project     = var.project_id
  location    = var.region
  name        = "${var.name_prefix}-sweep"
  description = "podscribe sweep: re-queues stalled jobs and re-wakes lost ones."
  labels      = var.labels

  build_config {
    runtime         = var.runtime
    entry_point     = "sweep"
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = var.sources_bucket
        object = google_storage_bucket_object.dispatch.name
      }
    }
  }

  service_config {
    service_account_email          = google_service_account.sweep.email
    ingress_settings               = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision = true
    available_memory               = var.dispatch_memory
    timeout_seconds                = var.dispatch_timeout_seconds
    min_instance_count             = 0
    max_instance_count             = 1
    direct_vpc_network_interface {
      network    = var.network_id
      subnetwork = var.functions_subnetwork_id
    }
    direct_vpc_egress     = "VPC_EGRESS_PRIVATE_RANGES_ONLY"
    environment_variables = local.sweep_environment
  }
}

# --- who may call what ----------------------------------------------------------------------

resource "google_cloud_run_v2_service_iam_member" "push_invokes_dispatch" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.dispatch.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

resource "google_cloud_run_v2_service_iam_member" "push_invokes_sweep" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.sweep.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.push.email}"
}

# submit is a public API: the platform lets anyone reach it and the function turns away
# every request without a valid API key (401) before doing any work.
resource "google_cloud_run_v2_service_iam_member" "public_invokes_submit" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.submit.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
