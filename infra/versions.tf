# Providers for the geotfr serverless pipeline (docs/semantics.md §10). Check offline with `npm test`
# (test/infra/infra.test.ts parses every file with @cdktf/hcl2json); deploy with cloudbuild.yaml
# or `terraform init && terraform apply -var-file=env.tfvars` (see docs/gcs.md).
terraform {
  required_version = ">= 1.5.0"
  # State in a GCS bucket: `terraform init -backend-config=bucket=STATE_BUCKET -backend-config=prefix=geotfr`.
  backend "gcs" {}
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.30.0, < 7.0.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

data "google_project" "this" {
  project_id = var.project_id
}

# APIs the pipeline uses. Disabling them on destroy would break other workloads in the project.
resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
