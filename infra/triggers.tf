# Bucket drops (docs/semantics.md §10): every object finalized in the exports bucket is delivered by Eventarc, as a
# `google.cloud.storage.object.v1.finalized` CloudEvent, to planExport (which acts on requests/*.json)
# and ingestPredictions (which acts on ingest/*.json). Eventarc cannot filter Cloud Storage events by
# name prefix, so each function ignores other names itself. Eventarc retries failed deliveries
# with backoff for up to 24 hours; a permanent failure is recorded in the job status by the function.

resource "google_eventarc_trigger" "request_drops" {
  name     = "${var.name_prefix}-request-drops"
  location = var.region
  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }
  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.exports.name
  }
  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.plan_export.name
      region  = var.region
    }
  }
  service_account = google_service_account.eventarc.email
  depends_on      = [google_project_iam_member.eventarc_receiver, google_project_iam_member.gcs_agent_publishes]
}

resource "google_eventarc_trigger" "ingest_drops" {
  name     = "${var.name_prefix}-ingest-drops"
  location = var.region
  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }
  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.exports.name
  }
  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.ingest_predictions.name
      region  = var.region
    }
  }
  service_account = google_service_account.eventarc.email
  depends_on      = [google_project_iam_member.eventarc_receiver, google_project_iam_member.gcs_agent_publishes]
}
