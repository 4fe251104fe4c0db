output "connection_name" {
  description = "`project:region:instance` (`CLOUDSQL_CONNECTION_NAME`)."
  value       = google_sql_database_instance.this.connection_name
}

output "instance_name" {
  description = "Name of the instance."
  value       = google_sql_database_instance.this.name
}

output "private_ip_address" {
  description = "Private IP of the instance."
  value       = google_sql_database_instance.this.private_ip_address
}

output "database_name" {
  description = "Name of the application database."
  value       = google_sql_database.this.name
}

output "iam_users" {
  description = "Database user of each IAM-authenticated service account, keyed like `iam_service_accounts`."
  value       = { for part, user in google_sql_user.iam : part => user.name }
}
