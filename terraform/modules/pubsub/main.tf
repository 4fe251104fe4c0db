# Messages are only wake-ups: the job row in Cloud SQL is the truth. The jobs topic wakes
# dispatch through a push subscription that retries with backoff and, after
# `max_delivery_attempts`, parks the message on a dead-letter topic for a person to read.
# Cloud Scheduler publishes to the sweep topic every few minutes; the sweep re-wakes stalled
# jobs, so a lost or dead-lettered message never loses a job.
#
# Why a push subscription of our own rather than an Eventarc trigger: Eventarc creates and
# owns its Pub/Sub subscription, and neither google_eventarc_trigger nor the functions'
# event_trigger can give it a dead-letter policy (hashicorp/terraform-provider-google#17697).
# Pub/Sub push delivers the same message the local profile's emulator pushes, and
# functions-framework turns it into the CloudEvent the `dispatch` and `sweep` targets take.

# The Pub/Sub service agent dead-letters messages. Enabling the API does not create it (it
# appears on first use), so it is created here, before it is granted anything: a grant to an
# account that does not exist yet fails the apply.
resource "google_project_service_identity" "pubsub" {
  provider = google-beta

  project = var.project_id
  service = "pubsub.googleapis.com"
}

locals {
  pubsub_service_agent = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_pubsub_topic" "jobs" {
  #checkov:skip=CKV_GCP_83: messages carry only a job id (no user data); Google-managed encryption is enough
  project                    = var.project_id
  name                       = "${var.name_prefix}-jobs"
  labels                     = var.labels
  message_retention_duration = var.message_retention_duration
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83: messages carry only a job id (no user data); Google-managed encryption is enough
  project = var.project_id
  name    = "${var.name_prefix}-jobs-dead-letter"
  labels  = var.labels
}

resource "google_pubsub_topic" "sweep" {
  #checkov:skip=CKV_GCP_83: sweep ticks carry no data at all; Google-managed encryption is enough
  project = var.project_id
  name    = "${var.name_prefix}-sweep"
  labels  = var.labels
}

resource "google_pubsub_subscription" "dispatch" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-dispatch"
  topic                      = google_pubsub_topic.jobs.id
  labels                     = var.labels
  ack_deadline_seconds       = var.ack_deadline_seconds
  message_retention_duration = var.message_retention_duration

  push_config {
    push_endpoint = var.dispatch_push_endpoint
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = var.dispatch_push_endpoint
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expires while idle
  }
}

# A topic keeps nothing without a subscription: this one holds dead letters for a person.
resource "google_pubsub_subscription" "dead_letter" {
  project                    = var.project_id
  name                       = "${var.name_prefix}-jobs-dead-letter"
  topic                      = google_pubsub_topic.dead_letter.id
  labels                     = var.labels
  message_retention_duration = "604800s"
  ack_deadline_seconds       = 60

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "sweep" {
  project              = var.project_id
  name                 = "${var.name_prefix}-sweep"
  topic                = google_pubsub_topic.sweep.id
  labels               = var.labels
  ack_deadline_seconds = var.ack_deadline_seconds
  # A tick older than the next one is worthless: let it go instead of piling up.
  message_retention_duration = "600s"

  push_config {
    push_endpoint = var.sweep_push_endpoint
    oidc_token {
      service_account_email = var.push_service_account_email
      audience              = var.sweep_push_endpoint
    }
  }

  retry_policy {
    minimum_backoff = var.minimum_backoff
    maximum_backoff = var.maximum_backoff
  }

  expiration_policy {
    ttl = ""
  }
}

resource "google_cloud_scheduler_job" "sweep" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-sweep"
  description = "Wakes the sweep, which re-queues stalled podscribe jobs."
  schedule    = var.sweep_schedule
  time_zone   = "Etc/UTC"

  pubsub_target {
    topic_name = google_pubsub_topic.sweep.id
    data       = base64encode(jsonencode({ reason = "sweep" }))
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it must be able to publish to the
# dead-letter topic and to acknowledge (subscribe) on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dispatch_dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.dispatch.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
