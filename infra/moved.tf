# Addresses before the functions, their accounts, topics and triggers were derived from one table
# (local.functions, functions.tf): these let `terraform apply` on an existing deployment keep every
# resource instead of destroying and re-creating it under its new address.
# (Storage grants were keyed by account before and are now keyed by function and bucket; they are
# re-created.)

moved {
  from = google_cloudfunctions2_function.plan_export
  to   = google_cloudfunctions2_function.function["plan_export"]
}
moved {
  from = google_cloudfunctions2_function.export_shard
  to   = google_cloudfunctions2_function.function["export_shard"]
}
moved {
  from = google_cloudfunctions2_function.finalize_export
  to   = google_cloudfunctions2_function.function["finalize_export"]
}
moved {
  from = google_cloudfunctions2_function.ingest_predictions
  to   = google_cloudfunctions2_function.function["ingest_predictions"]
}
moved {
  from = google_cloudfunctions2_function.dead_letter
  to   = google_cloudfunctions2_function.function["dead_letter"]
}

moved {
  from = google_service_account.plan
  to   = google_service_account.function["plan_export"]
}
moved {
  from = google_service_account.shard
  to   = google_service_account.function["export_shard"]
}
moved {
  from = google_service_account.finalize
  to   = google_service_account.function["finalize_export"]
}
moved {
  from = google_service_account.ingest
  to   = google_service_account.function["ingest_predictions"]
}
moved {
  from = google_service_account.dead_letter
  to   = google_service_account.function["dead_letter"]
}

moved {
  from = google_pubsub_topic.requests
  to   = google_pubsub_topic.topic["requests"]
}
moved {
  from = google_pubsub_topic.shards
  to   = google_pubsub_topic.topic["shards"]
}
moved {
  from = google_pubsub_topic.finalize
  to   = google_pubsub_topic.topic["finalize"]
}
moved {
  from = google_pubsub_topic.dead_letter
  to   = google_pubsub_topic.topic["dead_letter"]
}
moved {
  from = google_pubsub_topic.unhandled
  to   = google_pubsub_topic.topic["unhandled"]
}

moved {
  from = google_eventarc_trigger.request_drops
  to   = google_eventarc_trigger.drops["plan_export"]
}
# The ingest trigger now watches the prediction bucket and delivers to planIngest (the distributed
# ingest's planner): same resource, updated in place.
moved {
  from = google_eventarc_trigger.ingest_drops
  to   = google_eventarc_trigger.drops["plan_ingest"]
}

moved {
  from = google_pubsub_topic_iam_member.plan_publishes_shards
  to   = google_pubsub_topic_iam_member.function_publishes["plan_export:shards"]
}
moved {
  from = google_pubsub_topic_iam_member.plan_publishes_finalize
  to   = google_pubsub_topic_iam_member.function_publishes["plan_export:finalize"]
}
moved {
  from = google_pubsub_topic_iam_member.shard_publishes_finalize
  to   = google_pubsub_topic_iam_member.function_publishes["export_shard:finalize"]
}

moved {
  from = google_cloud_run_service_iam_member.pusher_invokes["plan"]
  to   = google_cloud_run_service_iam_member.pusher_invokes["plan_export"]
}
moved {
  from = google_cloud_run_service_iam_member.pusher_invokes["shard"]
  to   = google_cloud_run_service_iam_member.pusher_invokes["export_shard"]
}
moved {
  from = google_cloud_run_service_iam_member.pusher_invokes["finalize"]
  to   = google_cloud_run_service_iam_member.pusher_invokes["finalize_export"]
}
moved {
  from = google_cloud_run_service_iam_member.eventarc_invokes["plan"]
  to   = google_cloud_run_service_iam_member.eventarc_invokes["plan_export"]
}
moved {
  from = google_cloud_run_service_iam_member.eventarc_invokes["ingest"]
  to   = google_cloud_run_service_iam_member.eventarc_invokes["plan_ingest"]
}
