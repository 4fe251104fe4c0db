# The account Cloud Build builds the three functions as. Projects created since mid-2024 no
# longer give Cloud Build a default account with roles (builds would run as the Compute
# default account, which has none), so the module brings its own, holding only what a
# function build does: write its log, read the uploaded source and the copy Cloud Functions
# stages in its own `gcf-v2-*` buckets, and push the built image to Artifact Registry
# (`gcf-artifacts`, which Cloud Functions creates on first deploy).

locals {
  build_service_account = coalesce(var.build_service_account, google_service_account.build.id)
}

resource "google_service_account" "build" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-build"
  display_name = "podscribe function builds (Cloud Build)"
}

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_project_iam_member" "build_artifact_writer" {
  project = var.project_id
  role    = "roles/artifactregistry.writer"
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_sources" {
  bucket = var.sources_bucket
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# Cloud Functions copies the source into, and the build caches in, buckets it names
# `gcf-v2-sources-NUMBER-REGION` / `gcf-v2-uploads-...`: the grant holds for those only.
resource "google_project_iam_member" "build_gcf_buckets" {
  project = var.project_id
  role    = "roles/storage.objectAdmin"
  member  = "serviceAccount:${google_service_account.build.email}"

  condition {
    title       = "gcf-v2-buckets-only"
    description = "Only the buckets Cloud Functions stages sources in."
    expression  = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-\")"
  }
}
