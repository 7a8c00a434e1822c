"""OSS-side metrics, in the receiver's registry next to its `oss_target_requests_*` metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..receiver.metrics import LATENCY_BUCKETS

EVENTS_PER_OBJECT_BUCKETS = (1, 10, 100, 1_000, 10_000, 100_000)


class TargetMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.stored = Counter(
            "oss_target_events_stored", "Events written to OSS.", registry=registry
        )
        self.failed = Counter(
            "oss_target_events_failed",
            "Events not written, by reason (throttled, server-error, connection-refused, "
            "connection, timeout, dns, tls, integrity, no-credentials, access-denied, "
            "no-such-bucket, invalid-access-key, security-token-expired, invalid-key, ...).",
            ["reason"],
            registry=registry,
        )
        self.bytes_stored = Counter(
            "oss_target_bytes_stored", "Object bytes written to OSS.", registry=registry
        )
        self.attempts = Counter(
            "oss_target_upload_attempts",
            "PUT attempts by outcome (ok or the failure reason).",
            ["outcome"],
            registry=registry,
        )
        self.upload_seconds = Histogram(
            "oss_target_upload_duration_seconds",
            "Time to store one event, retries included, by outcome (stored, failed).",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.uploads_in_flight = Gauge(
            "oss_target_uploads_in_flight", "PUT requests to OSS in progress.", registry=registry
        )
        # Rolled objects (BATCH_MAX_EVENTS > 0).
        self.objects_written = Counter(
            "oss_target_objects_written", "Rolled NDJSON objects stored in OSS.", registry=registry
        )
        self.events_per_object = Histogram(
            "oss_target_events_per_object",
            "Events (lines) per rolled object stored.",
            buckets=EVENTS_PER_OBJECT_BUCKETS,
            registry=registry,
        )
        self.object_bytes_raw = Counter(
            "oss_target_object_bytes_uncompressed",
            "NDJSON bytes of the rolled objects stored, before compression.",
            registry=registry,
        )
        self.object_bytes_stored = Counter(
            "oss_target_object_bytes_compressed",
            "Bytes of the rolled objects stored, after compression (as written to OSS).",
            registry=registry,
        )
        self.flushes = Counter(
            "oss_target_object_flushes",
            "Rolled objects closed for upload, by reason (events, bytes, time, shutdown).",
            ["reason"],
            registry=registry,
        )
