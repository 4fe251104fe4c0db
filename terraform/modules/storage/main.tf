# Two buckets: transcripts (and the job's checkpoints) and the functions' source bundles.
# Both use uniform bucket-level access and enforced public access prevention: objects are
# reached only through IAM granted on the bucket, never through ACLs or public links.

resource "google_storage_bucket" "transcripts" {
  #checkov:skip=CKV_GCP_62: usage/storage logs are legacy; reads and writes are recorded by Cloud Audit Logs (Data Access) instead
  project                     = var.project_id
  name                        = var.transcripts_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = true
  }

  dynamic "lifecycle_rule" {
    for_each = var.transcripts_lifecycle_rules
    content {
      action {
        type          = lifecycle_rule.value.action
        storage_class = lifecycle_rule.value.storage_class
      }
      condition {
        age                        = lifecycle_rule.value.age_days
        days_since_noncurrent_time = lifecycle_rule.value.days_since_noncurrent_time
        with_state                 = lifecycle_rule.value.with_state
        matches_prefix             = lifecycle_rule.value.matches_prefix
      }
    }
  }
}

resource "google_storage_bucket" "sources" {
  #checkov:skip=CKV_GCP_62: usage/storage logs are legacy; reads and writes are recorded by Cloud Audit Logs (Data Access) instead
  project                     = var.project_id
  name                        = var.sources_bucket_name
  location                    = var.location
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = true
  }

  # Bundles are named by content hash, so old ones are only needed for a rollback.
  lifecycle_rule {
    action {
      type = "Delete"
    }
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
  }
}
