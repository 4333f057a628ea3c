# The five Cloud Functions (2nd gen), one per entry point exported by functions/index.ts, each with
# its own service account (iam.tf). They are HTTP services: Pub/Sub reaches them through the push
# subscriptions in pubsub.tf (which carry the retry and dead-letter policies), bucket drops through
# the Eventarc triggers in triggers.tf. Only planExport accepts traffic from outside the project,
# and only from authenticated var.plan_invokers.

locals {
  # The functions' configuration, read by shared/jobs/config.ts and shared/policy.ts.
  common_env = {
    GEOTFR_REQUEST_TOPIC            = google_pubsub_topic.requests.name
    GEOTFR_SHARD_TOPIC              = google_pubsub_topic.shards.name
    GEOTFR_FINALIZE_TOPIC           = google_pubsub_topic.finalize.name
    GEOTFR_FUNCTION_TIMEOUT_SECONDS = tostring(var.worker_timeout_seconds)
    GEOTFR_SHARD_BYTES_PER_SECOND   = tostring(var.shard_bytes_per_second)
    GEOTFR_SOURCE_BUCKETS           = join(",", local.source_buckets)
    GEOTFR_DESTINATION_BUCKETS      = google_storage_bucket.exports.name
    GEOTFR_ALLOW_LOCAL_PATHS        = "0"
    GEOTFR_MAX_REQUEST_BYTES        = tostring(var.max_request_bytes)
    GEOTFR_MAX_PIXELS_CAP           = tostring(var.max_pixels_cap)
    GOOGLE_CLOUD_PROJECT            = var.project_id
    GEOTFR_PROGRESS                 = "0"
  }
  function_source = {
    bucket = google_storage_bucket.function_source.name
    object = google_storage_bucket_object.function_source.name
  }
}

resource "google_cloudfunctions2_function" "plan_export" {
  name     = "${var.name_prefix}-plan-export"
  location = var.region
  build_config {
    runtime     = "nodejs20"
    entry_point = "planExport"
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.plan.email
    available_memory                 = "1Gi"
    timeout_seconds                  = 300
    max_instance_count               = 20
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_env
    max_instance_request_concurrency = 1
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "export_shard" {
  name     = "${var.name_prefix}-export-shard"
  location = var.region
  build_config {
    runtime     = "nodejs20"
    entry_point = "exportShard"
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.shard.email
    available_memory                 = var.worker_memory
    available_cpu                    = var.worker_cpu
    timeout_seconds                  = var.worker_timeout_seconds
    max_instance_count               = var.worker_max_instances
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_env
    max_instance_request_concurrency = 1
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "finalize_export" {
  name     = "${var.name_prefix}-finalize-export"
  location = var.region
  build_config {
    runtime     = "nodejs20"
    entry_point = "finalizeExport"
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.finalize.email
    available_memory                 = "512Mi"
    timeout_seconds                  = var.worker_timeout_seconds
    max_instance_count               = 10
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_env
    max_instance_request_concurrency = 1
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "ingest_predictions" {
  name     = "${var.name_prefix}-ingest-predictions"
  location = var.region
  build_config {
    runtime     = "nodejs20"
    entry_point = "ingestPredictions"
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.ingest.email
    available_memory                 = var.worker_memory
    available_cpu                    = var.worker_cpu
    timeout_seconds                  = var.worker_timeout_seconds
    max_instance_count               = 10
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_env
    max_instance_request_concurrency = 1
  }
  depends_on = [google_project_service.apis]
}

resource "google_cloudfunctions2_function" "dead_letter" {
  name     = "${var.name_prefix}-dead-letter"
  location = var.region
  build_config {
    runtime     = "nodejs20"
    entry_point = "deadLetter"
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.dead_letter.email
    available_memory                 = "256Mi"
    timeout_seconds                  = 60
    max_instance_count               = 5
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    environment_variables            = local.common_env
    max_instance_request_concurrency = 1
  }
  depends_on = [google_project_service.apis]
}
