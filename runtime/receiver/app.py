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
from typing import Any, TypeVar

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from .body import ArrivingBody, read_body
from .budget import ByteBudget
from .errors import (
    BodyTooLarge,
    Busy,
    InvalidEvent,
    InvalidHeader,
    RequestRejected,
    RequestTimeout,
    TooManyEvents,
    UnsupportedEncoding,
)
from .events import (
    BATCH_MEDIA_TYPE,
    STRUCTURED_MEDIA_TYPE,
    Mode,
    ReceivedEvent,
    media_type,
    parse_events,
)
from .logs import log_fields
from .metrics import ReceiverMetrics
from .responses import error_response, rejection_response
from .settings import JSON_MEMORY_FACTOR, MAX_BATCH_EVENTS, ServerSettings


@dataclass(frozen=True)
class Delivery:
    """What the handler gets: the validated events of one request, in order, and the raw body;
    `head_start` is the task its `HeadStart` began for the event while the body arrived."""

    mode: Mode
    events: list[ReceivedEvent]
    request: web.Request
    body: bytes = b""
    head_start: asyncio.Future[Any] | None = None


EventHandler = Callable[[Delivery], Awaitable[web.StreamResponse]]
# Called for a binary-mode request with a Content-Length whose headers are a valid event (parsed
# with empty data), after the headers' checks and the size's reservation and before its body is
# read; may start handling the event while the body arrives into `ArrivingBody` and return that
# task (handed to the handler as `Delivery.head_start`), or return None to take the body whole.
# The task is cancelled if the request ends without reaching the handler (the body aborted,
# draining). Not called when an Authenticator is set (nothing unauthenticated is acted on).
HeadStart = Callable[[ReceivedEvent, ArrivingBody], "asyncio.Future[Any] | None"]
# Checks a request before its body is parsed (the raw body is what signatures cover); raises a
# RequestRejected (e.g. Unauthorized) to refuse it.
Authenticator = Callable[[web.Request, bytes], None]
# Checks a request's headers before anything of its body is read or reserved (and before
# `100 Continue` is sent); raises a RequestRejected to refuse it.
HeaderCheck = Callable[[web.Request], None]

RECEIVER_KEY: web.AppKey[Receiver] = web.AppKey("receiver")
T = TypeVar("T")
_timeout = getattr(asyncio, "timeout", None)  # Python 3.11+
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_JSON_MODES = (STRUCTURED_MEDIA_TYPE, BATCH_MEDIA_TYPE)
# JSON bodies larger than this are parsed in a worker thread, so /healthz and other requests are
# served between the interpreter's switch intervals instead of waiting for the whole parse. A
# binary-mode body is not parsed (its headers are): handing it to a thread only cost the loop
# the GIL hand-over (a fifth of the target's samples under 1 MiB events, profiled).
PARSE_IN_THREAD_BYTES = 64 * 1024
# What a chunked request reserves before its body is read; it reserves more as the body grows
# (doubling), up to the limit.
CHUNKED_FIRST_BYTES = 64 * 1024
# While a request waits for the budget, how often it checks that its sender is still there.
DISCONNECT_POLL_SECONDS = 0.1
# The probes' paths. Connections accepted beyond MAX_CONNECTIONS (server.py keeps
# settings.PROBE_CONNECTIONS more) serve only these, so requests waiting for their objects can
# fill the cap without the liveness probe failing and the pod being restarted.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})
# Marks an answer nobody is left to receive.
_SENDER_GONE: web.ResponseKey[bool] = web.ResponseKey("sender_gone", bool)


class Receiver:
    """Builds `self.app`; `start_draining()` turns readiness and new POSTs to 503 and calls the
    `on_draining` callbacks (e.g. to flush what handlers are waiting for before the deadline).

    Per POST: the headers are checked (valid UTF-8, no content coding: 415
    `unsupported-encoding`, then `check_headers`), the declared size is checked against
    `max_body_bytes` (structured and batch bodies: `max_json_body_bytes`, the budget /
    JSON_MEMORY_FACTOR), the request reserves its size in a byte budget of `in_flight_bytes`
    (Content-Length; a chunked body CHUNKED_FIRST_BYTES, then more as it arrives, doubling up
    to the limit; 503 `busy` when it stays full for
    `body_timeout` seconds), only then is `100 Continue` sent and the body read (408 and
    close when it takes longer than `body_timeout`), authenticated, parsed, and handed to the
    handler, at most `max_in_flight` handlers at once. Once the body is read, the reservation
    becomes what handling it costs: its length, times JSON_MEMORY_FACTOR for a structured or
    batch body (what parsing may take; waiting for that too ends in 503 `busy`), so a sender
    that stalls holds only its body's bytes, and a chunked one only its own length once done. A
    request waits for a handler slot only once its body is complete, so a slow sender holds bytes
    of the budget but no slot. Memory is thereby bounded by bytes, not by request count.

    With a `head_start`, a binary-mode request with a Content-Length may be acted on while its
    body arrives (see HeadStart): its body is read into an ArrivingBody, still one copy.
    """

    def __init__(
        self,
        handler: EventHandler,
        *,
        name: str,
        max_body_bytes: int,
        max_in_flight: int = 64,
        in_flight_bytes: int | None = None,
        body_timeout: float = 10.0,
        registry: CollectorRegistry | None = None,
        logger: logging.Logger | None = None,
        is_ready: Callable[[], bool] | None = None,
        authenticate: Authenticator | None = None,
        check_headers: HeaderCheck | None = None,
        max_batch_events: int = MAX_BATCH_EVENTS,
        head_start: HeadStart | None = None,
    ) -> None:
        self.name = name
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ReceiverMetrics(self.registry, name)
        self.logger = logger or logging.getLogger(f"runtime.{name}")
        self.draining = False
        self.on_draining: list[Callable[[], None]] = []
        self._handler = handler
        self._is_ready = is_ready
        self._authenticate = authenticate
        self._check_headers = check_headers
        self._head_start = head_start if authenticate is None else None
        self._tasks: set[asyncio.Task] = set()
        self._aborting = False
        self.max_batch_events = max_batch_events
        self._configure(max_body_bytes, max_in_flight, in_flight_bytes, body_timeout)
        # The connections (aiohttp RequestHandlers) over MAX_CONNECTIONS: server.py fills it.
        self.probe_only: set[object] = set()
        # Those of them that have sent a request (the others may give way to a new connection).
        self.probe_started: set[object] = set()
        # The connections with a POST in progress (read, waiting or handled): server.py counts
        # them against MAX_CONNECTIONS even after their sender hung up, since the request's
        # memory is still held.
        self.busy: set[object] = set()
        self.app = web.Application(middlewares=[self._probe_reserve])
        self.app[RECEIVER_KEY] = self
        # `100 Continue` is sent by `_receive` itself, once the headers and the size have passed.
        self.app.router.add_post("/", self._receive, expect_handler=_defer_continue)
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)

    @web.middleware
    async def _probe_reserve(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """On a connection over MAX_CONNECTIONS (`probe_only`), anything but a probe is 503 `busy`,
        as the connection itself would have been; either way the connection is closed after its
        one answer."""
        if request.protocol not in self.probe_only:
            return await handler(request)
        self.probe_started.add(request.protocol)
        if request.path not in PROBE_PATHS:
            self.metrics.rejected.labels("too-many-connections").inc()
            response = error_response(
                503, "busy", "too many connections; retry", headers={"Retry-After": "1"}
            )
        else:
            response = await handler(request)
        # One request per connection over the cap: keep-alive would let a client keep the slot.
        response.force_close()
        return response

    def apply(self, settings: ServerSettings) -> None:
        """Take the limits from a runtime's ServerSettings (the process entry point does this, so
        every runtime gets the memory budget its container's limit allows). Call before serving."""
        self._configure(
            settings.max_body_bytes,
            settings.max_in_flight,
            settings.in_flight_bytes,
            settings.body_timeout_seconds,
        )
        self.max_batch_events = settings.max_batch_events

    def _configure(
        self, max_body_bytes: int, max_in_flight: int, in_flight_bytes: int | None, timeout: float
    ) -> None:
        if in_flight_bytes is None:
            in_flight_bytes = max(max_body_bytes, ServerSettings.in_flight_bytes)
        if max_body_bytes > in_flight_bytes:
            raise ValueError("max_body_bytes must fit in in_flight_bytes")
        self.max_body_bytes = max_body_bytes
        # What parsing a structured or batch body of this size costs must fit the budget.
        self.max_json_body_bytes = min(max_body_bytes, in_flight_bytes // JSON_MEMORY_FACTOR)
        self.body_timeout = timeout
        self.budget = ByteBudget(in_flight_bytes)
        self._slots = asyncio.Semaphore(max_in_flight)

    def start_draining(self) -> None:
        self.draining = True
        for callback in self.on_draining:
            callback()

    @property
    def in_flight(self) -> int:
        """POSTs being read, waiting or handled right now."""
        return len(self._tasks)

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for the requests in flight, then answer the rest 503
        (their handlers are cancelled: nothing they did is acknowledged). Returns how many were
        cut short. Call after `start_draining()`."""
        deadline = time.monotonic() + timeout
        while self._tasks and time.monotonic() < deadline:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        unfinished = list(self._tasks)
        if unfinished:
            self._aborting = True
            for task in unfinished:
                task.cancel()
            # Each cancelled request writes its 503 promptly; a moment is enough.
            grace = time.monotonic() + 1.0
            while self._tasks and time.monotonic() < grace:
                await asyncio.sleep(0.01)
        return len(unfinished)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        if self.draining:
            self.metrics.requests.labels("503").inc()
            return _draining_response()
        started = time.perf_counter()
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self.metrics.in_flight.inc()
        self.busy.add(request.protocol)
        try:
            response = await self._admit_read_and_handle(request, started)
        except asyncio.CancelledError:
            if not self._aborting:
                raise
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()
            log_fields(self.logger, logging.WARNING, "request cut short by shutdown", status=503)
            response = _draining_response()
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self.busy.discard(request.protocol)
            self.metrics.in_flight.dec()
        self.metrics.duration.observe(time.perf_counter() - started)
        if not response.get(_SENDER_GONE, False):
            # A sender that went away mid-body is counted as a disconnect, not as a 4xx it
            # never received.
            self.metrics.requests.labels(str(response.status)).inc()
        return response

    async def _admit_read_and_handle(
        self, request: web.Request, started: float
    ) -> web.StreamResponse:
        begun: list[asyncio.Future[Any]] = []
        try:
            return await self._read_and_handle(request, started, begun)
        finally:
            # A head start the handler did not finish (the body aborted, a drain's cancellation):
            # stopped, so nothing of it is acknowledged (an upload cut short is never stored).
            for task in begun:
                if not task.done():
                    task.cancel()

    async def _read_and_handle(
        self, request: web.Request, started: float, begun: list[asyncio.Future[Any]]
    ) -> web.StreamResponse:
        reserved = 0
        head_start: asyncio.Future[Any] | None = None
        try:
            _check_encodable(request)
            _check_codings(request)
            if self._check_headers is not None:
                self._check_headers(request)
            json_body = media_type(request.headers.get("Content-Type")) in _JSON_MODES
            limit = self.max_json_body_bytes if json_body else self.max_body_bytes
            declared = request.content_length
            if declared is not None and declared > limit:
                raise BodyTooLarge(_too_large(declared, limit, json_body))
            # A chunked body reserves a first step, then grows its reservation as it arrives:
            # a trickling sender holds what it sent, not the whole limit.
            size = min(limit, CHUNKED_FIRST_BYTES) if declared is None else declared
            await self._reserve(size, request)
            reserved = size

            async def grow(total: int) -> None:
                nonlocal reserved
                if total > reserved:
                    # Doubling keeps the number of reservations logarithmic; when the doubled
                    # step does not fit now, only what the body has actually reached is waited for.
                    more = min(limit, max(total, 2 * reserved)) - reserved
                    if not self.budget.try_acquire(more, lane_size=total):
                        more = total - reserved
                        await self._reserve(more, request, lane_size=total)
                    reserved += more

            if request.headers.get("Expect", "").lower() == "100-continue":
                await request.writer.write(_CONTINUE)
                request.writer.output_size = 0
            arriving = None
            if self._head_start is not None and declared is not None and not json_body:
                arriving, head_start = self._begin(request, declared)
                if head_start is not None:
                    begun.append(head_start)
            try:
                body = await _within(
                    read_body(request, limit, grow if declared is None else None, arriving),
                    self.body_timeout,
                )
            except asyncio.TimeoutError:
                raise RequestTimeout(
                    f"the body did not arrive within {self.body_timeout:g} seconds"
                ) from None
            # Size limit, then authentication, then parsing: nothing unauthenticated is parsed.
            if self._authenticate is not None:
                self._authenticate(request, body)
            # Now that the size is known: what the handler (and the parser) may cost.
            cost = len(body) * (JSON_MEMORY_FACTOR if json_body else 1)
            if cost > reserved:
                # Not hold-and-wait (requests each holding their body's bytes and waiting for
                # more would block one another): give the bytes back and wait for the whole
                # cost at the head of the queue, so no new body is admitted meanwhile. Bodies
                # waiting here are thus at most what the budget held: memory stays within
                # twice the budget, inside the BODY_MEMORY_FACTOR of 3.
                self.budget.release(reserved)
                reserved = 0
                # In the lane of the body's own size: a small event stays in the small lane.
                await self._reserve(cost, request, first=True, lane_size=len(body))
            else:
                self.budget.release(reserved - cost)
            reserved = cost
            if json_body and len(body) > PARSE_IN_THREAD_BYTES:
                mode, events = await asyncio.to_thread(_parse, request, body)
            else:
                mode, events = _parse(request, body)
            if len(events) > self.max_batch_events:
                raise TooManyEvents(
                    f"a batch of {len(events)} events exceeds the limit of "
                    f"{self.max_batch_events} events per request"
                )
        except RequestRejected as error:
            self.budget.release(reserved)
            return self._rejected(error, started)
        except (ConnectionError, ClientPayloadError, HttpProcessingError) as error:
            # The sender went away or broke the framing mid-body: nobody is left to answer, and
            # it is the sender's doing, so it is counted, not logged as an error.
            self.budget.release(reserved)
            self.metrics.disconnects.inc()
            log_fields(
                self.logger, logging.INFO, "client disconnected", error_type=type(error).__name__
            )
            response = error_response(400, "client-disconnected", "the request body was cut off")
            response.force_close()
            transport = request.transport
            response[_SENDER_GONE] = transport is None or transport.is_closing()
            return response
        except BaseException:
            self.budget.release(reserved)
            raise
        try:
            self.metrics.events_received.labels(mode).inc(len(events))
            async with self._slots:
                return await self._handler(
                    Delivery(
                        mode=mode, events=events, request=request, body=body, head_start=head_start
                    )
                )
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
        finally:
            del body, events
            self.budget.release(reserved)

    def _begin(
        self, request: web.Request, declared: int
    ) -> tuple[ArrivingBody | None, asyncio.Future[Any] | None]:
        """The HeadStart's task for a binary-mode event whose headers are valid, with the body it
        reads from; (None, None) when there is none (the headers are checked again, and refused
        as usual, once the body is read)."""
        assert self._head_start is not None
        try:
            mode, events = parse_events(request.headers.items(), b"")
        except Exception:  # the whole request is checked and answered after the body is read
            return None, None
        if mode != "binary":
            return None, None
        arriving = ArrivingBody(declared)
        head_start = self._head_start(events[0], arriving)
        return (arriving, head_start) if head_start is not None else (None, None)

    async def _reserve(
        self,
        size: int,
        request: web.Request,
        *,
        first: bool = False,
        lane_size: int | None = None,
    ) -> None:
        """Take `size` bytes of the budget, waiting up to `body_timeout` (then Busy). A sender
        that disconnects while waiting gives up its place in the queue at once
        (ConnectionResetError), instead of holding it until the deadline."""
        if self.budget.try_acquire(size, lane_size=lane_size):
            return
        waiting = asyncio.ensure_future(self.budget.acquire(size, first=first, lane_size=lane_size))
        deadline = time.monotonic() + self.body_timeout
        try:
            while not waiting.done():
                transport = request.transport
                if transport is None or transport.is_closing():
                    raise ConnectionResetError("the sender disconnected while waiting")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Busy("too many request bytes in flight; retry later")
                await asyncio.wait({waiting}, timeout=min(left, DISCONNECT_POLL_SECONDS))
            waiting.result()
        except BaseException:
            waiting.cancel()  # ByteBudget.acquire gives back a grant that raced the cancel
            raise

    def _rejected(self, error: RequestRejected, started: float) -> web.Response:
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
        if isinstance(error, Busy):
            response.headers["Retry-After"] = "1"
        if error.status in (401, 408, 413, 415, 503) or isinstance(error, InvalidHeader):
            # The body was not (fully) read: the connection cannot be reused.
            response.force_close()
        return response

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


async def _within(awaitable: Awaitable[T], seconds: float) -> T:
    """`await awaitable`, or asyncio.TimeoutError after `seconds`. On Python 3.11+ (the images)
    without the extra task `wait_for` creates per call: this runs twice per request."""
    if _timeout is None:
        return await asyncio.wait_for(awaitable, seconds)
    async with _timeout(seconds):
        return await awaitable


async def _defer_continue(request: web.Request) -> None:
    """aiohttp's default sends `100 Continue` before the handler runs, i.e. before any check;
    `_receive` sends it once the headers and the size have passed. Other expectations: 417."""
    if request.headers.get("Expect", "").lower() != "100-continue":
        raise web.HTTPExpectationFailed(text="only Expect: 100-continue is supported")


def _draining_response() -> web.Response:
    response = error_response(
        503, "draining", "shutting down; retry on another instance", headers={"Retry-After": "1"}
    )
    response.force_close()
    return response


def _check_encodable(request: web.Request) -> None:
    """aiohttp decodes header bytes as UTF-8 with surrogateescape: bytes that are not UTF-8 come
    through as lone surrogates, which every later `.encode()` (a signature, a log line, an object
    store's metadata) would fail on with a 500. Refuse them here, once, for every header."""
    for name, value in request.headers.items():
        if not (value.isascii() and name.isascii()):
            try:
                name.encode("utf-8")
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidHeader(
                    f"header {name.encode('ascii', 'replace').decode()!r} is not valid UTF-8"
                ) from None


def _too_large(declared: int, limit: int, json_body: bool) -> str:
    if json_body:
        return (
            f"a structured or batch body of {declared} bytes exceeds the limit of {limit} bytes "
            f"for JSON (parsing costs up to {JSON_MEMORY_FACTOR} bytes of memory per body byte; "
            "binary mode takes larger bodies)"
        )
    return f"body of {declared} bytes exceeds the limit of {limit} bytes"


def _check_codings(request: web.Request) -> None:
    """Only identity bodies: the stored object is the body as sent, and the byte budget counts
    what is read. A `Content-Encoding` other than identity, or a `Transfer-Encoding` coding other
    than chunked (RFC 9112 section 6.1), is 415 before anything of the body is read (aiohttp's
    own decompression is off: see server.serve)."""
    for header, allowed in (("Content-Encoding", "identity"), ("Transfer-Encoding", "chunked")):
        for value in request.headers.getall(header, ()):
            for coding in value.split(","):
                coding = coding.strip().lower()
                if coding and coding != allowed:
                    raise UnsupportedEncoding(
                        f"{header} {coding[:40]!r} is not accepted: send the body as is "
                        f"({header}: {allowed} or none)"
                    )


def _parse(request: web.Request, body: bytes) -> tuple[Mode, list[ReceivedEvent]]:
    try:
        return parse_events(request.headers.items(), body)
    except RequestRejected:
        raise
    except (RecursionError, ValueError, UnicodeError, OverflowError, TypeError) as error:
        # Whatever the parser did not anticipate about hostile input (JSON nested too deeply,
        # numbers beyond the int() limit) is still the sender's error, not ours.
        raise InvalidEvent(f"the event could not be parsed ({type(error).__name__})") from None
