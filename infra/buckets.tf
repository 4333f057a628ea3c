# Buckets: uniform bucket-level access (IAM only, no object ACLs) and public access prevention, so
# nothing here can be made public by an object ACL or a stray binding.

locals {
  # Buckets live in the functions' region: reads stay local, and Eventarc's Cloud Storage triggers
  # must be in the bucket's location.
  bucket_location = upper(var.region)
  # The buckets behind the "sources" role (functions.tf): the sources bucket plus existing ones.
  source_buckets = concat([google_storage_bucket.sources.name], var.extra_source_buckets)
}

resource "google_storage_bucket" "sources" {
  name                        = var.source_bucket_name
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets
  depends_on                  = [google_project_service.apis]
}

resource "google_storage_bucket" "exports" {
  name                        = var.export_bucket_name
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets

  # Request drops are consumed once planned; keep them a month for audit, then delete.
  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["requests/"]
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.apis]
}

# Predictions (written by the user's model), ingest requests (ingest/*.json), the COGs ingest writes
# and their job state. Apart from the exports bucket so the exporters can neither read nor write it.
resource "google_storage_bucket" "predictions" {
  name                        = coalesce(var.prediction_bucket_name, "${var.project_id}-${var.name_prefix}-predictions")
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy_buckets

  # Ingest drops are consumed once run; keep them a month for audit, then delete.
  lifecycle_rule {
    condition {
      age            = 30
      matches_prefix = ["ingest/"]
    }
    action {
      type = "Delete"
    }
  }
  depends_on = [google_project_service.apis]
}

# Holds the functions' source archive (written by Terraform, read by Cloud Build).
resource "google_storage_bucket" "function_source" {
  name                        = "${var.project_id}-${var.name_prefix}-gcf-source"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  depends_on                  = [google_project_service.apis]
}

data "archive_file" "function_source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.module}/.terraform-build/function-source.zip"
}

resource "google_storage_bucket_object" "function_source" {
  # The content hash in the name makes a code change redeploy every function.
  name   = "function-source-${data.archive_file.function_source.output_md5}.zip"
  bucket = google_storage_bucket.function_source.name
  source = data.archive_file.function_source.output_path
}
