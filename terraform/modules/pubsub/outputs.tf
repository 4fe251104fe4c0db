output "jobs_topic_id" {
  description = "Id of the jobs topic (`projects/PROJECT/topics/NAME`)."
  value       = google_pubsub_topic.jobs.id
}

output "jobs_topic_name" {
  description = "Name of the jobs topic (`PODSCRIBE_PUBSUB_TOPIC`)."
  value       = google_pubsub_topic.jobs.name
}

output "dead_letter_topic_id" {
  description = "Id of the dead-letter topic."
  value       = google_pubsub_topic.dead_letter.id
}

output "dead_letter_subscription" {
  description = "Name of the subscription that keeps dead letters for inspection."
  value       = google_pubsub_subscription.dead_letter.name
}

output "sweep_topic_id" {
  description = "Id of the sweep topic Cloud Scheduler publishes to."
  value       = google_pubsub_topic.sweep.id
}

output "dispatch_subscription" {
  description = "Name of the push subscription that wakes dispatch."
  value       = google_pubsub_subscription.dispatch.name
}
