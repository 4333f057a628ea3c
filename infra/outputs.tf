output "plan_export_url" {
  description = "HTTPS endpoint of planExport (POST a request with an identity token of a var.plan_invokers member)."
  value       = google_cloudfunctions2_function.plan_export.service_config[0].uri
}

output "request_topic" {
  description = "Publish export requests here (gcloud pubsub topics publish TOPIC --message=\"$(cat request.json)\")."
  value       = google_pubsub_topic.requests.id
}

output "source_bucket" {
  value = google_storage_bucket.sources.name
}

output "export_bucket" {
  description = "Drop requests at gs://BUCKET/requests/NAME.json and ingest requests at gs://BUCKET/ingest/NAME.json."
  value       = google_storage_bucket.exports.name
}

output "job_status_path" {
  description = "Where each job's status document lives (poll it: state, shard counts, bytes, timings, errors)."
  value       = "gs://${google_storage_bucket.exports.name}/.geotfr/jobs/<jobId>/status.json"
}

output "dead_letter_topic" {
  value = google_pubsub_topic.dead_letter.id
}

output "service_accounts" {
  description = "The identity each function runs as."
  value = {
    planExport        = google_service_account.plan.email
    exportShard       = google_service_account.shard.email
    finalizeExport    = google_service_account.finalize.email
    ingestPredictions = google_service_account.ingest.email
    deadLetter        = google_service_account.dead_letter.email
  }
}
