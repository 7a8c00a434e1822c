"""The aiohttp application every receiver shares: POST / plus health, readiness and metrics.

The receiver owns everything up to "a list of valid events": body limits, content modes, validation,
bounded concurrency, draining, metrics and rejection logs. What happens to the events is the
`EventHandler`'s job; it returns the HTTP answer (see `runtime.receiver.responses`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .body import read_body
from .errors import RequestRejected
from .events import Mode, ReceivedEvent, parse_events
from .logs import log_fields
from .metrics import ReceiverMetrics
from .responses import error_response, rejection_response


@dataclass(frozen=True)
class Delivery:
    """What the handler gets: the validated events of one request, in order."""

    mode: Mode
    events: list[ReceivedEvent]
    request: web.Request


EventHandler = Callable[[Delivery], Awaitable[web.StreamResponse]]
# Checks a request before its body is parsed (the raw body is what signatures cover); raises a
# RequestRejected (e.g. Unauthorized) to refuse it.
Authenticator = Callable[[web.Request, bytes], None]

RECEIVER_KEY: web.AppKey[Receiver] = web.AppKey("receiver")


class Receiver:
    """Builds `self.app`; `start_draining()` turns readiness and new POSTs to 503.

    At most `max_in_flight` requests are read and handled at once; later ones wait (before their
    body is read), which bounds memory to about `max_in_flight * max_body_bytes`.
    """

    def __init__(
        self,
        handler: EventHandler,
        *,
        name: str,
        max_body_bytes: int,
        max_in_flight: int = 64,
        registry: CollectorRegistry | None = None,
        logger: logging.Logger | None = None,
        is_ready: Callable[[], bool] | None = None,
        authenticate: Authenticator | None = None,
    ) -> None:
        self.name = name
        self.max_body_bytes = max_body_bytes
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ReceiverMetrics(self.registry, name)
        self.logger = logger or logging.getLogger(f"runtime.{name}")
        self.draining = False
        self._handler = handler
        self._is_ready = is_ready
        self._authenticate = authenticate
        self._slots = asyncio.Semaphore(max_in_flight)
        self.app = web.Application()
        self.app[RECEIVER_KEY] = self
        self.app.router.add_post("/", self._receive)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)

    def start_draining(self) -> None:
        self.draining = True

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        if self.draining:
            response = error_response(
                503,
                "draining",
                "shutting down; retry on another instance",
                headers={"Retry-After": "1"},
            )
            response.force_close()
            self.metrics.requests.labels("503").inc()
            return response
        started = time.perf_counter()
        self.metrics.in_flight.inc()
        try:
            async with self._slots:
                response = await self._read_and_handle(request, started)
        finally:
            self.metrics.in_flight.dec()
        self.metrics.duration.observe(time.perf_counter() - started)
        self.metrics.requests.labels(str(response.status)).inc()
        return response

    async def _read_and_handle(self, request: web.Request, started: float) -> web.StreamResponse:
        try:
            body = await read_body(request, self.max_body_bytes)
            # Size limit, then authentication, then parsing: nothing unauthenticated is parsed.
            if self._authenticate is not None:
                self._authenticate(request, body)
            mode, events = parse_events(request.headers.items(), body)
        except RequestRejected as error:
            self.metrics.rejected.labels(error.code).inc()
            log_fields(
                self.logger,
                logging.WARNING,
                "request rejected",
                status=error.status,
                error=error.code,
                reason=error.message,
                latency_ms=round((time.perf_counter() - started) * 1000, 3),
            )
            response = rejection_response(error)
            if error.status in (413, 415):
                # The body was not (fully) read: the connection cannot be reused.
                response.force_close()
            return response
        self.metrics.events_received.labels(mode).inc(len(events))
        try:
            return await self._handler(Delivery(mode=mode, events=events, request=request))
        except Exception as error:
            log_fields(
                self.logger,
                logging.ERROR,
                "handler failed",
                status=500,
                error_type=type(error).__name__,
                events=len(events),
            )
            return error_response(500, "internal-error", "the event could not be handled")

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.draining:
            return web.json_response({"status": "draining"}, status=503)
        if self._is_ready is not None and not self._is_ready():
            return web.json_response({"status": "not ready"}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
