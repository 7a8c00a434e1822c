"""OSS-side metrics, in the receiver's registry next to its `oss_target_requests_*` metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..receiver.metrics import LATENCY_BUCKETS


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
