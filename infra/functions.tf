# The Cloud Functions (2nd gen), one per entry point exported by functions/index.ts. They are
# declared once, as the table local.functions; every per-function resource is derived from it: the
# function below, its service account and grants (iam.tf), the push subscription delivering to it
# (pubsub.tf) and its bucket-drop trigger (triggers.tf). They are HTTP services: Pub/Sub reaches them
# through push subscriptions (which carry the retry and dead-letter policies), bucket drops through
# Eventarc. Only planExport accepts traffic from outside the project, and only from authenticated
# var.plan_invokers.

locals {
  # Bucket roles → the buckets behind them. A function's `reads` and `writes` name roles; each becomes
  # both an allow-list the code enforces (GEOTFR_SOURCE_BUCKETS / GEOTFR_DESTINATION_BUCKETS,
  # shared/jobs/policy.ts) and an IAM grant (iam.tf), so what the code allows and what IAM allows are the
  # same list.
  bucket_roles = {
    sources     = local.source_buckets
    exports     = [google_storage_bucket.exports.name]
    predictions = [google_storage_bucket.predictions.name]
  }

  # One entry per function (keys are the Terraform instance keys).
  #   reads        buckets request URIs may be read from (sources, ingest files/prefix/mixer)
  #   writes       buckets outputs and job state are written to (objectUser: status.json is overwritten)
  #   publishes    topics the function publishes to
  #   push_topic   topic whose push subscription delivers to it, dead-lettering to `dead_letter`
  #   drops        Eventarc trigger on object finalize in that bucket role (the function picks its names)
  functions = {
    plan_export = {
      entry_point     = "planExport"
      account_id      = "plan"
      memory          = "1Gi"
      cpu             = null
      timeout_seconds = 300
      max_instances   = 20
      ingress         = "ALLOW_ALL"
      reads           = ["sources"]
      writes          = ["exports"]
      # The planner publishes the finalize message itself when every shard was already written (a replay).
      publishes   = ["shards", "finalize"]
      push_topic  = "requests"
      dead_letter = "dead_letter"
      drops       = { bucket = "exports", trigger = "request-drops" } # requests/*.json
    }
    export_shard = {
      entry_point     = "exportShard"
      account_id      = "shard"
      memory          = var.worker_memory
      cpu             = var.worker_cpu
      timeout_seconds = var.worker_timeout_seconds
      max_instances   = var.worker_max_instances
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = ["sources"]
      writes          = ["exports"]
      publishes       = ["finalize"]
      push_topic      = "shards"
      dead_letter     = "dead_letter"
      drops           = null
    }
    finalize_export = {
      entry_point     = "finalizeExport"
      account_id      = "finalize"
      memory          = "512Mi"
      cpu             = null
      timeout_seconds = var.worker_timeout_seconds
      max_instances   = 10
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = []
      writes          = ["exports"]
      publishes       = []
      push_topic      = "finalize"
      dead_letter     = "dead_letter"
      drops           = null
    }
    # Ingest reads the mixer from the exports bucket and the predictions from the predictions bucket
    # (or the exports bucket), and writes the COG and its job state to the predictions bucket, where its
    # requests are dropped (ingest/*.json) and where it records rejected ones. Exporters never see it.
    ingest_predictions = {
      entry_point     = "ingestPredictions"
      account_id      = "ingest"
      memory          = var.worker_memory
      cpu             = var.worker_cpu
      timeout_seconds = var.worker_timeout_seconds
      max_instances   = 10
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = ["exports", "predictions"]
      writes          = ["predictions"]
      publishes       = []
      push_topic      = null
      dead_letter     = null
      # Its drops now go to planIngest (docs/semantics.md §13); kept for direct use and existing deployments.
      drops = null
    }
    # The distributed ingest (docs/semantics.md §13): the planner scans the predictions once and
    # publishes a message per strip; HTTP, so its time limit may be an hour (event functions stop at 9
    # minutes). It takes ingest/*.json drops, Pub/Sub requests and (internal) HTTP POSTs.
    plan_ingest = {
      entry_point     = "planIngest"
      account_id      = "plan-ingest"
      memory          = var.worker_memory
      cpu             = var.worker_cpu
      timeout_seconds = var.ingest_timeout_seconds
      max_instances   = 10
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = ["exports", "predictions"]
      writes          = ["predictions"]
      publishes       = ["strips", "ingest_finalize"]
      push_topic      = "ingest_requests"
      dead_letter     = "dead_letter"
      drops           = { bucket = "predictions", trigger = "ingest-drops" } # ingest/*.json
    }
    # One strip of a distributed ingest per message: reads its records, writes its COG parts.
    ingest_strip = {
      entry_point     = "ingestStrip"
      account_id      = "strip"
      memory          = var.worker_memory
      cpu             = var.worker_cpu
      timeout_seconds = var.worker_timeout_seconds
      max_instances   = var.worker_max_instances
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = ["exports", "predictions"]
      writes          = ["predictions"]
      publishes       = ["ingest_finalize"]
      push_topic      = "strips"
      dead_letter     = "dead_letter"
      drops           = null
    }
    # Assembles the COG once every strip is done (coarse levels, header, compose): HTTP for the long
    # time limit. A push delivery's ack deadline is at most 600 s, so an assembly that takes longer is
    # redelivered meanwhile; the second finalizer's compose loses its create-once precondition and
    # finds the job done (shared/jobs/ingest-strips.ts).
    finalize_ingest = {
      entry_point     = "finalizeIngest"
      account_id      = "finalize-ingest"
      memory          = var.worker_memory
      cpu             = var.worker_cpu
      timeout_seconds = var.ingest_timeout_seconds
      max_instances   = 10
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = []
      writes          = ["predictions"]
      publishes       = []
      push_topic      = "ingest_finalize"
      dead_letter     = "dead_letter"
      drops           = null
    }
    # Marks the job of a dead-lettered message failed, in the bucket the message names (exports for
    # export messages, predictions for the distributed ingest's strip and finalize messages).
    dead_letter = {
      entry_point     = "deadLetter"
      account_id      = "deadletter"
      memory          = "256Mi"
      cpu             = null
      timeout_seconds = 60
      max_instances   = 5
      ingress         = "ALLOW_INTERNAL_ONLY"
      reads           = []
      writes          = ["exports", "predictions"]
      publishes       = []
      push_topic      = "dead_letter"
      dead_letter     = "unhandled"
      drops           = null
    }
  }

  # The buckets behind each function's roles.
  function_buckets = {
    for k, f in local.functions : k => {
      reads  = flatten([for r in f.reads : local.bucket_roles[r]])
      writes = flatten([for r in f.writes : local.bucket_roles[r]])
    }
  }

  # The configuration every function reads (shared/jobs/config.ts, shared/jobs/policy.ts).
  common_env = {
    GEOTFR_REQUEST_TOPIC            = google_pubsub_topic.topic["requests"].name
    GEOTFR_SHARD_TOPIC              = google_pubsub_topic.topic["shards"].name
    GEOTFR_FINALIZE_TOPIC           = google_pubsub_topic.topic["finalize"].name
    GEOTFR_INGEST_REQUEST_TOPIC     = google_pubsub_topic.topic["ingest_requests"].name
    GEOTFR_STRIP_TOPIC              = google_pubsub_topic.topic["strips"].name
    GEOTFR_INGEST_FINALIZE_TOPIC    = google_pubsub_topic.topic["ingest_finalize"].name
    GEOTFR_MAX_STRIP_BYTES          = tostring(var.max_strip_bytes)
    GEOTFR_INGEST_TIMEOUT_SECONDS   = tostring(var.ingest_timeout_seconds)
    GEOTFR_FUNCTION_TIMEOUT_SECONDS = tostring(var.worker_timeout_seconds)
    GEOTFR_SHARD_BYTES_PER_SECOND   = tostring(var.shard_bytes_per_second)
    GEOTFR_ALLOW_LOCAL_PATHS        = "0"
    GEOTFR_MAX_REQUEST_BYTES        = tostring(var.max_request_bytes)
    GEOTFR_MAX_PIXELS_CAP           = tostring(var.max_pixels_cap)
    GOOGLE_CLOUD_PROJECT            = var.project_id
    GEOTFR_PROGRESS                 = "0"
  }

  # Each function's environment: the common settings plus its own allow-lists. An empty allow-list is
  # left unset: the code's default ("") allows nothing.
  function_env = {
    for k, b in local.function_buckets : k => {
      for name, value in merge(local.common_env, {
        GEOTFR_SOURCE_BUCKETS      = join(",", b.reads)
        GEOTFR_DESTINATION_BUCKETS = join(",", b.writes)
      }) : name => value if value != ""
    }
  }

  function_source = {
    bucket = google_storage_bucket.function_source.name
    object = google_storage_bucket_object.function_source.name
  }
}

resource "google_cloudfunctions2_function" "function" {
  for_each = local.functions
  name     = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  location = var.region
  build_config {
    runtime     = "nodejs20"
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = local.function_source.bucket
        object = local.function_source.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.function[each.key].email
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout_seconds
    max_instance_count               = each.value.max_instances
    ingress_settings                 = each.value.ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = local.function_env[each.key]
    max_instance_request_concurrency = 1
  }
  depends_on = [google_project_service.apis]
}
