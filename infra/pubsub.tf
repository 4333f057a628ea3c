# Topics and push subscriptions (docs/semantics.md §10). Every subscription delivering to a function has a retry
# policy (exponential backoff) and a dead-letter policy: after max_delivery_attempts the message goes
# to the dead-letter topic, whose handler marks the job failed with the recorded reason.
#
# Push (not Eventarc's managed subscriptions) because only an explicit subscription can carry a
# dead-letter policy. Pushes are authenticated with an OIDC token of the pusher service account,
# the only identity allowed to invoke the event functions.

locals {
  # The topics; `retention`: how long the topic itself keeps messages (null: only subscriptions do).
  topics = {
    requests    = { name = "requests", retention = null }
    shards      = { name = "shards", retention = null }
    finalize    = { name = "finalize", retention = null }
    dead_letter = { name = "dead-letter", retention = null }
    # The distributed ingest (docs/semantics.md §13).
    ingest_requests = { name = "ingest-requests", retention = null }
    strips          = { name = "strips", retention = null }
    ingest_finalize = { name = "ingest-finalize", retention = null }
    # Where dead letters go when even the dead-letter handler keeps failing: no subscriber, but
    # retained for a week so an operator can inspect or replay them (seek a new subscription to the
    # topic's past).
    unhandled = { name = "dead-letter-unhandled", retention = "604800s" }
  }

  # topic → (function, dead-letter topic), from the push_topic of each function (functions.tf).
  push_subscriptions = {
    for k, f in local.functions : f.push_topic => {
      topic       = google_pubsub_topic.topic[f.push_topic].id
      endpoint    = google_cloudfunctions2_function.function[k].service_config[0].uri
      dead_letter = google_pubsub_topic.topic[f.dead_letter].id
    } if f.push_topic != null
  }
}

resource "google_pubsub_topic" "topic" {
  for_each                   = local.topics
  name                       = "${var.name_prefix}-${each.value.name}"
  message_retention_duration = each.value.retention
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions
  name     = "${var.name_prefix}-${replace(each.key, "_", "-")}-push"
  topic    = each.value.topic

  # A shard may take the whole function time limit; the message must not be redelivered meanwhile.
  ack_deadline_seconds       = 600
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = "" # never expires
  }

  push_config {
    push_endpoint = each.value.endpoint
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = each.value.endpoint
    }
  }

  retry_policy {
    minimum_backoff = var.retry_minimum_backoff
    maximum_backoff = var.retry_maximum_backoff
  }

  dead_letter_policy {
    dead_letter_topic     = each.value.dead_letter
    max_delivery_attempts = var.max_delivery_attempts
  }
}
