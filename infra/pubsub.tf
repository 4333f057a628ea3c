# Topics and push subscriptions (docs/semantics.md §10). Every subscription delivering to a function has a retry
# policy (exponential backoff) and a dead-letter policy: after max_delivery_attempts the message goes
# to the dead-letter topic, whose handler marks the job failed with the recorded reason.
#
# Push (not Eventarc's managed subscriptions) because only an explicit subscription can carry a
# dead-letter policy. Pushes are authenticated with an OIDC token of the pusher service account,
# the only identity allowed to invoke the event functions.

resource "google_pubsub_topic" "requests" {
  name       = "${var.name_prefix}-requests"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "shards" {
  name       = "${var.name_prefix}-shards"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "finalize" {
  name       = "${var.name_prefix}-finalize"
  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "dead_letter" {
  name       = "${var.name_prefix}-dead-letter"
  depends_on = [google_project_service.apis]
}

# Where dead letters go when even the dead-letter handler keeps failing: no subscriber, but retained
# for a week so an operator can inspect or replay them (seek a new subscription to the topic's past).
resource "google_pubsub_topic" "unhandled" {
  name                       = "${var.name_prefix}-dead-letter-unhandled"
  message_retention_duration = "604800s"
  depends_on                 = [google_project_service.apis]
}

locals {
  # topic → (function, dead-letter topic) for each push subscription.
  push_subscriptions = {
    requests = {
      topic       = google_pubsub_topic.requests.id
      endpoint    = google_cloudfunctions2_function.plan_export.service_config[0].uri
      dead_letter = google_pubsub_topic.dead_letter.id
    }
    shards = {
      topic       = google_pubsub_topic.shards.id
      endpoint    = google_cloudfunctions2_function.export_shard.service_config[0].uri
      dead_letter = google_pubsub_topic.dead_letter.id
    }
    finalize = {
      topic       = google_pubsub_topic.finalize.id
      endpoint    = google_cloudfunctions2_function.finalize_export.service_config[0].uri
      dead_letter = google_pubsub_topic.dead_letter.id
    }
    dead_letter = {
      topic       = google_pubsub_topic.dead_letter.id
      endpoint    = google_cloudfunctions2_function.dead_letter.service_config[0].uri
      dead_letter = google_pubsub_topic.unhandled.id
    }
  }
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
