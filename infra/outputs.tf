output "plan_export_url" {
  description = "HTTPS endpoint of planExport (POST a request with an identity token of a var.plan_invokers member)."
  value       = google_cloudfunctions2_function.function["plan_export"].service_config[0].uri
}

output "request_topic" {
  description = "Publish export requests here (gcloud pubsub topics publish TOPIC --message=\"$(cat request.json)\")."
  value       = google_pubsub_topic.topic["requests"].id
}

output "source_bucket" {
  value = google_storage_bucket.sources.name
}

output "export_bucket" {
  description = "Drop export requests at gs://BUCKET/requests/NAME.json; shards and mixers land here."
  value       = google_storage_bucket.exports.name
}

output "prediction_bucket" {
  description = "Write predictions here and drop ingest requests at gs://BUCKET/ingest/NAME.json; the COGs land here."
  value       = google_storage_bucket.predictions.name
}

output "job_status_path" {
  description = "Where each export job's status document lives (poll it: state, shard counts, bytes, timings, errors); an ingest job's is at the same path in the prediction bucket."
  value       = "gs://${google_storage_bucket.exports.name}/.geotfr/jobs/<jobId>/status.json"
}

output "dead_letter_topic" {
  value = google_pubsub_topic.topic["dead_letter"].id
}

output "service_accounts" {
  description = "The identity each function runs as."
  value       = { for k, f in local.functions : f.entry_point => google_service_account.function[k].email }
}
