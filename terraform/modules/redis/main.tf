# Memorystore for Redis holds only rate-limit counters (a sliding window per key and per IP).
# It sits on the private services access range, so only the network's members reach it, and
# it requires AUTH; the connection URL, AUTH string included, goes to Secret Manager.

resource "google_redis_instance" "this" {
  #checkov:skip=CKV_GCP_97: in-transit TLS would make every function carry the instance's CA; traffic stays inside the peered VPC and holds only rate-limit counters
  project                 = var.project_id
  name                    = var.instance_name
  region                  = var.region
  tier                    = var.tier
  memory_size_gb          = var.memory_size_gb
  redis_version           = var.redis_version
  authorized_network      = var.network_id
  connect_mode            = "PRIVATE_SERVICE_ACCESS"
  auth_enabled            = true
  transit_encryption_mode = "DISABLED"
  labels                  = var.labels

  # Counters that vanish on eviction only reset a window: never let Redis refuse writes.
  redis_configs = {
    maxmemory-policy = "volatile-ttl"
  }

  maintenance_policy {
    weekly_maintenance_window {
      day = "SUNDAY"
      start_time {
        hours   = 4
        minutes = 0
        seconds = 0
        nanos   = 0
      }
    }
  }
}
