"""Receiver-level Prometheus metrics, registered in the receiver's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


class ReceiverMetrics:
    """`<prefix>_requests_total{status}`, `<prefix>_events_received_total{mode}`,
    `<prefix>_requests_rejected_total{reason}`, `<prefix>_requests_in_flight`,
    `<prefix>_request_duration_seconds` (histogram over POST /),
    `<prefix>_client_disconnects_total` (senders that went away or broke the framing mid-body)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.requests = Counter(
            f"{prefix}_requests", "Requests to POST / by status.", ["status"], registry=registry
        )
        self.events_received = Counter(
            f"{prefix}_events_received",
            "Valid CloudEvents received, by content mode.",
            ["mode"],
            registry=registry,
        )
        self.rejected = Counter(
            f"{prefix}_requests_rejected",
            "Requests refused before any side effect, by reason.",
            ["reason"],
            registry=registry,
        )
        self.in_flight = Gauge(
            f"{prefix}_requests_in_flight", "Requests to POST / being handled.", registry=registry
        )
        self.disconnects = Counter(
            f"{prefix}_client_disconnects",
            "Requests whose sender disconnected or broke the framing before the body was complete.",
            registry=registry,
        )
        self.duration = Histogram(
            f"{prefix}_request_duration_seconds",
            "Time from the start of POST / to the answer.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
