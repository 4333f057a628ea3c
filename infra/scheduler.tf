# Scheduled exports (docs/semantics.md §10): Cloud Scheduler publishes the request to the request topic on a cron
# schedule, exactly like a user publishing it. The fileNamePrefix carries `{date}` (enforced by the
# variable's validation), which the planner fills with the run's date so runs never overwrite each other.

resource "google_cloud_scheduler_job" "export" {
  for_each    = var.scheduled_exports
  name        = "${var.name_prefix}-${each.key}"
  description = "geotfr scheduled export ${each.key}"
  region      = var.region
  schedule    = each.value.schedule
  time_zone   = each.value.time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.topic["requests"].id
    data       = base64encode(each.value.request_json)
    attributes = {
      source   = "scheduler"
      schedule = each.key
    }
  }

  retry_config {
    retry_count          = 3
    min_backoff_duration = "30s"
  }

  depends_on = [google_project_service.apis, google_pubsub_topic_iam_member.scheduler_publishes_requests]
}
