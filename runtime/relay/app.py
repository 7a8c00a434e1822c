"""The relay's request handling on the shared receiver: verify the signature, forward, answer.

Order per request: body size limit (receiver) -> Standard Webhooks signature over the raw body
(401) -> CloudEvents parsing (400/415, receiver) -> forward every event to the sink -> 202 only
when the sink accepted all of them; 503 + Retry-After when it is down; 502 when it refused one.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from ..receiver import (
    Delivery,
    Receiver,
    RetryPolicy,
    Unauthorized,
    error_response,
    log_fields,
)
from .forward import Forwarded, Forwarder, binary_headers
from .settings import RelaySettings
from .signature import SignatureError, verify

log = logging.getLogger("runtime.relay")


def build_relay(settings: RelaySettings) -> tuple[Receiver, Forwarder]:
    forwarder = Forwarder(
        settings.sink_url,
        timeout=settings.timeout_seconds,
        policy=RetryPolicy(
            budget=settings.retry_budget_seconds,
            base=settings.backoff_seconds,
            cap=settings.backoff_max_seconds,
        ),
        concurrency=settings.concurrency,
    )
    registry = CollectorRegistry()
    forwarded = Counter(
        "relay_events_forwarded",
        "Events forwarded to the sink, by outcome.",
        ["outcome"],
        registry=registry,
    )

    def authenticate(request: web.Request, body: bytes) -> None:
        try:
            verify(settings.signing_key, request.headers, body, time.time())
        except SignatureError as error:
            log_fields(log, logging.WARNING, "signature rejected", reason=str(error))
            raise Unauthorized("missing or invalid Standard Webhooks signature") from None

    async def handle(delivery: Delivery) -> web.StreamResponse:
        results: list[Forwarded] = await asyncio.gather(
            *(
                forwarder.forward(received, binary_headers(received, delivery.request.headers))
                for received in delivery.events
            )
        )
        for result in results:
            outcome = "accepted" if result.accepted else "failed"
            forwarded.labels(outcome).inc()
            log_fields(
                log,
                logging.INFO if result.accepted else logging.ERROR,
                "event forwarded" if result.accepted else "event not forwarded",
                id=result.event_id,
                attempts=result.attempts,
                status=result.status,
                error=result.error,
            )
        failed = [result for result in results if not result.accepted]
        if not failed:
            return web.Response(status=202)
        details = {"failed": [{"id": r.event_id, "status": r.status} for r in failed]}
        if all(result.sink_down for result in failed):
            wait = max([settings.retry_after_seconds, *(r.retry_after or 0 for r in failed)])
            return error_response(
                503,
                "sink-unavailable",
                "the sink did not accept the event(s); retry later",
                details=details,
                headers={"Retry-After": str(int(wait))},
            )
        return error_response(
            502, "sink-rejected", "the sink refused the event(s)", details=details
        )

    receiver = Receiver(
        handle,
        name="relay",
        max_body_bytes=settings.server.max_body_bytes,
        max_in_flight=settings.server.max_in_flight,
        registry=registry,
        authenticate=authenticate,
    )
    return receiver, forwarder
