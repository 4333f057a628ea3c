# Identities and least-privilege bindings (issue 6, "Security"). Each function runs as its own
# service account holding only what its code does:
#
# | account   | sources bucket(s) | exports bucket | Pub/Sub publish        |
# |-----------|-------------------|----------------|------------------------|
# | plan      | objectViewer      | objectUser     | shards, finalize       |
# | shard     | objectViewer      | objectUser     | finalize               |
# | finalize  | -                 | objectUser     | -                      |
# | ingest    | -                 | objectUser     | -                      |
# | deadletter| -                 | objectUser     | -                      |
#
# objectUser (not objectCreator) on the exports bucket because job state (.geotfr/jobs/<id>/status.json,
# errors/*.json) is overwritten, which needs storage.objects.delete; it grants no IAM or bucket admin.
# Shards and mixers themselves are written create-once (ifGenerationMatch=0) by the code.
#
# Invocation: no function is public. Pub/Sub pushes as `pusher`, Eventarc as `eventarc`, and only
# var.plan_invokers may call planExport over HTTP.

resource "google_service_account" "plan" {
  account_id   = "${var.name_prefix}-plan"
  display_name = "geotfr planExport function"
}

resource "google_service_account" "shard" {
  account_id   = "${var.name_prefix}-shard"
  display_name = "geotfr exportShard function"
}

resource "google_service_account" "finalize" {
  account_id   = "${var.name_prefix}-finalize"
  display_name = "geotfr finalizeExport function"
}

resource "google_service_account" "ingest" {
  account_id   = "${var.name_prefix}-ingest"
  display_name = "geotfr ingestPredictions function"
}

resource "google_service_account" "dead_letter" {
  account_id   = "${var.name_prefix}-deadletter"
  display_name = "geotfr deadLetter function"
}

resource "google_service_account" "pusher" {
  account_id   = "${var.name_prefix}-pusher"
  display_name = "geotfr Pub/Sub push identity (invokes the event functions)"
}

resource "google_service_account" "eventarc" {
  account_id   = "${var.name_prefix}-eventarc"
  display_name = "geotfr Eventarc identity (bucket drops to planExport and ingestPredictions)"
}

locals {
  pubsub_agent    = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  scheduler_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"

  source_readers = {
    plan  = "serviceAccount:${google_service_account.plan.email}"
    shard = "serviceAccount:${google_service_account.shard.email}"
  }
  export_users = {
    plan        = "serviceAccount:${google_service_account.plan.email}"
    shard       = "serviceAccount:${google_service_account.shard.email}"
    finalize    = "serviceAccount:${google_service_account.finalize.email}"
    ingest      = "serviceAccount:${google_service_account.ingest.email}"
    dead_letter = "serviceAccount:${google_service_account.dead_letter.email}"
  }
  source_reader_bindings = {
    for pair in setproduct(keys(local.source_readers), local.source_buckets) :
    "${pair[0]}:${pair[1]}" => { member = local.source_readers[pair[0]], bucket = pair[1] }
  }
}

# --- Storage -----------------------------------------------------------------------------------

resource "google_storage_bucket_iam_member" "source_viewer" {
  for_each = local.source_reader_bindings
  bucket   = each.value.bucket
  role     = "roles/storage.objectViewer"
  member   = each.value.member
}

resource "google_storage_bucket_iam_member" "export_user" {
  for_each = local.export_users
  bucket   = google_storage_bucket.exports.name
  role     = "roles/storage.objectUser"
  member   = each.value
}

# --- Pub/Sub publishing ------------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "plan_publishes_shards" {
  topic  = google_pubsub_topic.shards.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.plan.email}"
}

# The planner publishes the finalize message itself when every shard was already written (a replay).
resource "google_pubsub_topic_iam_member" "plan_publishes_finalize" {
  topic  = google_pubsub_topic.finalize.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.plan.email}"
}

resource "google_pubsub_topic_iam_member" "shard_publishes_finalize" {
  topic  = google_pubsub_topic.finalize.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.shard.email}"
}

# Cloud Scheduler publishes scheduled requests as its service agent.
resource "google_pubsub_topic_iam_member" "scheduler_publishes_requests" {
  topic  = google_pubsub_topic.requests.id
  role   = "roles/pubsub.publisher"
  member = local.scheduler_agent
}

# Dead-lettering: Pub/Sub's service agent forwards undeliverable messages (publisher on the
# dead-letter topics) and acknowledges them on the source subscription (subscriber there).
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letter" {
  for_each = {
    dead_letter = google_pubsub_topic.dead_letter.id
    unhandled   = google_pubsub_topic.unhandled.id
  }
  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "agent_subscribes" {
  for_each     = google_pubsub_subscription.push
  subscription = each.value.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Pub/Sub mints the push OIDC tokens of `pusher`.
resource "google_service_account_iam_member" "agent_mints_pusher_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# --- Invocation ----------------------------------------------------------------------------------

locals {
  pushed_services = {
    plan        = google_cloudfunctions2_function.plan_export.name
    shard       = google_cloudfunctions2_function.export_shard.name
    finalize    = google_cloudfunctions2_function.finalize_export.name
    dead_letter = google_cloudfunctions2_function.dead_letter.name
  }
  eventarc_services = {
    plan   = google_cloudfunctions2_function.plan_export.name
    ingest = google_cloudfunctions2_function.ingest_predictions.name
  }
}

resource "google_cloud_run_service_iam_member" "pusher_invokes" {
  for_each = local.pushed_services
  location = var.region
  service  = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

resource "google_cloud_run_service_iam_member" "eventarc_invokes" {
  for_each = local.eventarc_services
  location = var.region
  service  = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.eventarc.email}"
}

# Eventarc requires its trigger identity to hold eventReceiver on the project (no narrower scope exists).
resource "google_project_iam_member" "eventarc_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.eventarc.email}"
}

# Cloud Storage triggers publish through Pub/Sub as the Cloud Storage service agent.
data "google_storage_project_service_account" "gcs_agent" {
  project = var.project_id
}

resource "google_project_iam_member" "gcs_agent_publishes" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs_agent.email_address}"
}

resource "google_cloud_run_service_iam_member" "plan_http_invokers" {
  for_each = toset(var.plan_invokers)
  location = var.region
  service  = google_cloudfunctions2_function.plan_export.name
  role     = "roles/run.invoker"
  member   = each.value
}
