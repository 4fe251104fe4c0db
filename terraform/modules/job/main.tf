# What the transcription job needs on GCP: a Docker repository for its image and the service
# account Vertex AI CustomJobs run as, with only the grants the job uses.
#
# The job pulls nothing itself: Vertex AI's service agent pulls the image, and it reads
# Artifact Registry repositories of its own project without a grant, so the job's account
# gets no Artifact Registry role.

resource "google_artifact_registry_repository" "images" {
  #checkov:skip=CKV_GCP_84: the image holds open-source code and no secrets; Google-managed encryption is enough
  project       = var.project_id
  location      = var.region
  repository_id = var.repository_id
  description   = "podscribe transcription job images"
  format        = "DOCKER"
  labels        = var.labels

  docker_config {
    immutable_tags = var.immutable_tags
  }

  # Keep the newest versions (rollbacks); delete untagged layers after 30 days.
  cleanup_policy_dry_run = false
  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = var.keep_image_versions
    }
  }
  cleanup_policies {
    id     = "delete-untagged"
    action = "DELETE"
    condition {
      tag_state  = "UNTAGGED"
      older_than = "2592000s"
    }
  }
}

resource "google_service_account" "job" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "podscribe transcription job (Vertex AI CustomJob)"
}

# Cloud SQL roles exist only at project level: client opens the connector's tunnel,
# instanceUser lets the account log in with IAM database authentication.
resource "google_project_iam_member" "job_cloudsql_client" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.job.email}"
}

resource "google_project_iam_member" "job_cloudsql_instance_user" {
  project = var.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = "serviceAccount:${google_service_account.job.email}"
}

# The job writes transcripts and checkpoints, reads its checkpoint back when a relaunched
# attempt resumes an episode, and overwrites `transcripts/<id>/checkpoint.json` every few
# minutes (and a retried attempt its transcripts). Overwriting needs storage.objects.delete,
# which objectCreator lacks: objectUser (create, get, list, delete, update objects) on this
# bucket only is the smallest predefined role that can do it.
resource "google_storage_bucket_iam_member" "job_object_user" {
  bucket = var.transcripts_bucket
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.job.email}"
}

# The job signs the webhooks of the jobs it finishes; it reads the secret through the API.
resource "google_secret_manager_secret_iam_member" "job_webhook_secret" {
  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.job.email}"
}
