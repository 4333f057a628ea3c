# Everything a deployment chooses. Names mirror the functions' environment (shared/jobs/config.ts,
# shared/jobs/policy.ts), which functions.tf fills from these.

variable "project_id" {
  description = "Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions, topics' triggers, scheduler jobs and buckets."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (several deployments can share a project)."
  type        = string
  default     = "geotfr"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}$", var.name_prefix))
    error_message = "name_prefix must be 1-15 characters: lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "source_bucket_name" {
  description = "Bucket created for source rasters and tables (read-only to the functions)."
  type        = string
}

variable "export_bucket_name" {
  description = "Bucket created for exports: shards, mixers, manifests, request drops (requests/*.json) and export job state under .geotfr/."
  type        = string
}

variable "prediction_bucket_name" {
  description = "Bucket created for predictions: prediction TFRecords, ingest request drops (ingest/*.json), the COGs ingest writes and their job state under .geotfr/. Default: PROJECT-NAME_PREFIX-predictions."
  type        = string
  default     = null
}

variable "extra_source_buckets" {
  description = "Existing buckets planExport and exportShard may also read sources from (their source allow-list is source_bucket_name plus these)."
  type        = list(string)
  default     = []
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets (test projects only)."
  type        = bool
  default     = false
}

variable "source_dir" {
  description = "Directory holding the deployable package (built dist/, package.json with main = dist/functions/index.js, package-lock.json); cloudbuild.yaml prepares it."
  type        = string
  default     = "../.deploy"
}

variable "plan_invokers" {
  description = "IAM members allowed to call planExport over HTTP (e.g. group:geo-team@example.com). Never allUsers/allAuthenticatedUsers."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for m in var.plan_invokers : !contains(["allUsers", "allAuthenticatedUsers"], m)])
    error_message = "planExport must not be publicly invokable."
  }
}

variable "max_delivery_attempts" {
  description = "Deliveries of a Pub/Sub message before it goes to the dead-letter topic (Pub/Sub allows 5-100)."
  type        = number
  default     = 5
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5 to 100 delivery attempts."
  }
}

variable "retry_minimum_backoff" {
  description = "Pub/Sub retry policy: first redelivery delay."
  type        = string
  default     = "10s"
}

variable "retry_maximum_backoff" {
  description = "Pub/Sub retry policy: largest redelivery delay."
  type        = string
  default     = "600s"
}

variable "worker_timeout_seconds" {
  description = "Time limit of exportShard (and finalize/ingest). At most 540 so a push delivery's 600 s ack deadline covers it; the planner splits shards to fit (GEOTFR_FUNCTION_TIMEOUT_SECONDS)."
  type        = number
  default     = 540
  validation {
    condition     = var.worker_timeout_seconds > 0 && var.worker_timeout_seconds <= 540
    error_message = "worker_timeout_seconds must be in 1..540."
  }
}

variable "worker_memory" {
  description = "Memory of exportShard and ingestPredictions."
  type        = string
  default     = "2Gi"
}

variable "worker_cpu" {
  description = "vCPUs of exportShard and ingestPredictions."
  type        = string
  default     = "1"
}

variable "worker_max_instances" {
  description = "Largest number of exportShard instances at once (the export's concurrency)."
  type        = number
  default     = 100
}

variable "shard_bytes_per_second" {
  description = "Measured uncompressed bytes one worker writes per second (bench/), used to size shards to the time limit."
  type        = number
  default     = 20000000
}

variable "max_request_bytes" {
  description = "Largest request document accepted (GEOTFR_MAX_REQUEST_BYTES)."
  type        = number
  default     = 262144
}

variable "max_pixels_cap" {
  description = "Largest maxPixels a request may ask for (GEOTFR_MAX_PIXELS_CAP)."
  type        = number
  default     = 100000000000
}

variable "scheduled_exports" {
  description = <<-EOT
    Recurring exports: Cloud Scheduler jobs publishing a request to the request topic. `request_json` is
    an export request (docs/semantics.md §2); its fileNamePrefix must contain {date} so runs do not overwrite each other.
  EOT
  type = map(object({
    schedule     = string
    time_zone    = optional(string, "Etc/UTC")
    request_json = string
  }))
  default = {}
  validation {
    condition     = alltrue([for k, v in var.scheduled_exports : can(regex("\\{date\\}", jsondecode(v.request_json).fileNamePrefix))])
    error_message = "Every scheduled export's fileNamePrefix must contain {date}."
  }
}

variable "ingest_timeout_seconds" {
  description = "Time limit of the distributed ingest's planner and finalizer (HTTP functions: up to 3600 s; GEOTFR_INGEST_TIMEOUT_SECONDS)."
  type        = number
  default     = 3600
  validation {
    condition     = var.ingest_timeout_seconds > 0 && var.ingest_timeout_seconds <= 3600
    error_message = "ingest_timeout_seconds must be in 1..3600."
  }
}

variable "max_strip_bytes" {
  description = "Uncompressed pixel bytes per strip of a distributed ingest that sets neither stripTileRows nor workers (GEOTFR_MAX_STRIP_BYTES)."
  type        = number
  default     = 4000000000
}
