# Bucket drops (docs/semantics.md §10): every object finalized in a watched bucket is delivered by Eventarc, as a
# `google.cloud.storage.object.v1.finalized` CloudEvent, to the function whose `drops` names that
# bucket (functions.tf): planExport for the exports bucket (it acts on requests/*.json) and
# ingestPredictions for the predictions bucket (it acts on ingest/*.json). Eventarc cannot filter
# Cloud Storage events by name prefix, so each function ignores other names itself. Eventarc retries
# failed deliveries with backoff for up to 24 hours; a permanent failure is recorded in the job status
# by the function.

resource "google_eventarc_trigger" "drops" {
  for_each = { for k, f in local.functions : k => f.drops if f.drops != null }
  name     = "${var.name_prefix}-${each.value.trigger}"
  location = var.region
  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }
  matching_criteria {
    attribute = "bucket"
    # Drops are watched in single-bucket roles (exports, predictions), never in the source list.
    value = local.bucket_roles[each.value.bucket][0]
  }
  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.function[each.key].name
      region  = var.region
    }
  }
  service_account = google_service_account.eventarc.email
  depends_on      = [google_project_iam_member.eventarc_receiver, google_project_iam_member.gcs_agent_publishes]
}
