# Identities and least-privilege bindings (issue 6, "Security"). Each function runs as its own
# service account holding only what its code does, derived from its row in local.functions
# (functions.tf):
#
# | function          | objectViewer on    | objectUser on  | publishes to      | invoked by          |
# |-------------------|--------------------|----------------|-------------------|---------------------|
# | planExport        | sources (+ extra)  | exports        | shards, finalize  | pusher, eventarc, plan_invokers |
# | exportShard       | sources (+ extra)  | exports        | finalize          | pusher              |
# | finalizeExport    | -                  | exports        | -                 | pusher              |
# | ingestPredictions | exports            | predictions    | -                 | (no trigger)        |
# | planIngest        | exports            | predictions    | strips, ingest-finalize | pusher, eventarc |
# | ingestStrip       | exports            | predictions    | ingest-finalize   | pusher              |
# | finalizeIngest    | -                  | predictions    | -                 | pusher              |
# | deadLetter        | -                  | exports, predictions | -           | pusher              |
#
# The same rows set each function's allow-lists (GEOTFR_SOURCE_BUCKETS = its readable buckets,
# GEOTFR_DESTINATION_BUCKETS = its writable ones), so the code refuses what IAM would refuse.
# objectUser (not objectCreator) where a function writes, because job state
# (.geotfr/jobs/<id>/status.json, errors/*.json) is overwritten, which needs storage.objects.delete; it
# grants no IAM or bucket admin. Shards and mixers themselves are written create-once
# (ifGenerationMatch=0) by the code.
#
# Invocation: no function is public. Pub/Sub pushes as `pusher`, Eventarc as `eventarc`, and only
# var.plan_invokers may call planExport over HTTP.

resource "google_service_account" "function" {
  for_each     = local.functions
  account_id   = "${var.name_prefix}-${each.value.account_id}"
  display_name = "geotfr ${each.value.entry_point} function"
}

resource "google_service_account" "pusher" {
  account_id   = "${var.name_prefix}-pusher"
  display_name = "geotfr Pub/Sub push identity (invokes the event functions)"
}

resource "google_service_account" "eventarc" {
  account_id   = "${var.name_prefix}-eventarc"
  display_name = "geotfr Eventarc identity (bucket drops to planExport and planIngest)"
}

locals {
  pubsub_agent    = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  scheduler_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-cloudscheduler.iam.gserviceaccount.com"

  function_members = { for k, f in local.functions : k => "serviceAccount:${google_service_account.function[k].email}" }

  # One grant per (function, bucket): objectUser where it writes, objectViewer where it only reads.
  bucket_grants = merge([
    for k, b in local.function_buckets : merge(
      { for bucket in setsubtract(b.reads, b.writes) : "${k}:${bucket}" => { function = k, bucket = bucket, role = "roles/storage.objectViewer" } },
      { for bucket in b.writes : "${k}:${bucket}" => { function = k, bucket = bucket, role = "roles/storage.objectUser" } },
    )
  ]...)

  topic_grants = merge([
    for k, f in local.functions : { for t in f.publishes : "${k}:${t}" => { function = k, topic = t } }
  ]...)
}

# --- Storage -----------------------------------------------------------------------------------

resource "google_storage_bucket_iam_member" "function" {
  for_each = local.bucket_grants
  bucket   = each.value.bucket
  role     = each.value.role
  member   = local.function_members[each.value.function]
}

# --- Pub/Sub publishing ------------------------------------------------------------------------

resource "google_pubsub_topic_iam_member" "function_publishes" {
  for_each = local.topic_grants
  topic    = google_pubsub_topic.topic[each.value.topic].id
  role     = "roles/pubsub.publisher"
  member   = local.function_members[each.value.function]
}

# Cloud Scheduler publishes scheduled requests as its service agent.
resource "google_pubsub_topic_iam_member" "scheduler_publishes_requests" {
  topic  = google_pubsub_topic.topic["requests"].id
  role   = "roles/pubsub.publisher"
  member = local.scheduler_agent
}

# Dead-lettering: Pub/Sub's service agent forwards undeliverable messages (publisher on the
# dead-letter topics) and acknowledges them on the source subscription (subscriber there).
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letter" {
  for_each = {
    dead_letter = google_pubsub_topic.topic["dead_letter"].id
    unhandled   = google_pubsub_topic.topic["unhandled"].id
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

resource "google_cloud_run_service_iam_member" "pusher_invokes" {
  for_each = { for k, f in local.functions : k => f if f.push_topic != null }
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

resource "google_cloud_run_service_iam_member" "eventarc_invokes" {
  for_each = { for k, f in local.functions : k => f if f.drops != null }
  location = var.region
  service  = google_cloudfunctions2_function.function[each.key].name
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
  service  = google_cloudfunctions2_function.function["plan_export"].name
  role     = "roles/run.invoker"
  member   = each.value
}
