# The two secrets submit reads at start-up, as environment variables
# (secret_environment_variables): the accepted API keys and the Redis URL with its AUTH string;
# and the webhook signing secret, which dispatch, the sweep and the Vertex job read through
# the API (a Vertex job cannot mount secrets). Access is granted per secret (in the modules
# that own the accounts), never project-wide.

resource "google_secret_manager_secret" "api_keys" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-api-keys"
  labels    = var.labels

  replication {
    auto {}
  }
}

# Optional: keys given to Terraform end up in its state. Leave `api_keys` unset to add the
# first version with `gcloud secrets versions add` instead (see docs/deploy.md).
resource "google_secret_manager_secret_version" "api_keys" {
  count = nonsensitive(var.api_keys != null) ? 1 : 0

  secret      = google_secret_manager_secret.api_keys.id
  secret_data = var.api_keys
}

resource "google_secret_manager_secret" "redis_url" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-redis-url"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "redis_url" {
  secret      = google_secret_manager_secret.redis_url.id
  secret_data = var.redis_url
}

resource "google_secret_manager_secret" "webhook_secret" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-webhook-secret"
  labels    = var.labels

  replication {
    auto {}
  }
}

# Optional, like the API keys: or `gcloud secrets versions add` it (see docs/deploy.md).
resource "google_secret_manager_secret_version" "webhook_secret" {
  count = nonsensitive(var.webhook_secret != null) ? 1 : 0

  secret      = google_secret_manager_secret.webhook_secret.id
  secret_data = var.webhook_secret
}
