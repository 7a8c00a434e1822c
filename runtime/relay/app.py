"""The relay's request handling on the shared receiver: authenticate, de-duplicate, forward, answer.

What the relay accepts is exactly what the SCF function signs (README "Relay"): one event per
request in structured mode, the whole event in the signed body. Per request:

1. before the body is read (and before `100 Continue`): the `webhook-*` headers are well-formed
   and the timestamp is within 5 minutes (else 401); no `ce-*` header (400 `unsigned-content`:
   it would sit outside the signature); Content-Type `application/cloudevents+json`, charset
   utf-8 if given (else 415: binary mode and batches are refused); a Content-Length (else 411:
   no chunked bodies, hence no trailers), within MAX_BODY_BYTES (else 413);
2. the body is read under the receiver's deadline and byte budget, then the HMAC is checked
   (401), then the event is parsed (400) and its id must equal `webhook-id` (400 `id-mismatch`);
   it must keep the data contract (`check_data`: JSON `data` as `application/json`, unique member
   names) and fit a sink's header limits once forwarded (`binary_headers`), else 400;
3. at the moment of deciding (body read and verified, handler slot taken) the timestamp must
   still be within the window (401 otherwise: a request whose head arrived in time but whose body
   completed after the window closed is refused, not forwarded); then an id already forwarded
   under a timestamp still within the window is answered 202 and not forwarded again, and a
   request for an id being forwarded right now waits for that attempt and shares its outcome (202
   or the same failure) without a second attempt. Window and cache are checked with one clock
   reading and one rule (`within_window`), so "acceptable" means the same thing to both;
4. the event goes to `K_SINK` in binary mode: 202 only once the sink accepted it; 503 +
   Retry-After when the sink is down (or the replay cache is full); 502 when it refused it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from ..receiver import (
    Delivery,
    InvalidEvent,
    InvalidHeader,
    Receiver,
    RequestRejected,
    RetryPolicy,
    Unauthorized,
    UnsupportedMediaType,
    error_response,
    log_fields,
)
from ..receiver.events import STRUCTURED_MEDIA_TYPE
from .forward import Forwarded, Forwarder, UnforwardableAttribute, binary_headers
from .replay import ReplayCache
from .settings import RelaySettings
from .signature import (
    TOLERANCE_SECONDS,
    SignatureError,
    SignedHeaders,
    check_headers,
    verify_body,
    within_window,
)

log = logging.getLogger("runtime.relay")
JSON_MEDIA_TYPE = "application/json"
_SIGNED: web.RequestKey[SignedHeaders] = web.RequestKey("relay-signed-headers")


class UnsignedContent(RequestRejected):
    """Something that would reach the sink but is not covered by the signature (a `ce-*` header)."""

    status = 400
    code = "unsigned-content"


class LengthRequired(InvalidHeader):
    """A body without Content-Length (chunked): the function always sends one. Refusing chunked
    bodies refuses their trailers (fields outside the signature that aiohttp reads and drops),
    the malformed chunks aiohttp's C parser leaves the reader waiting on, and reservations of
    MAX_BODY_BYTES for bodies of unknown size."""

    status = 411
    code = "length-required"


class IdMismatch(RequestRejected):
    """The signed event's id is not the `webhook-id` it was signed under."""

    status = 400
    code = "id-mismatch"


def check_content_type(value: str | None) -> None:
    """Only `application/cloudevents+json`, optionally with `charset=utf-8` (415 otherwise)."""
    kind, _, parameters = (value or "").partition(";")
    if kind.strip().lower() != STRUCTURED_MEDIA_TYPE:
        raise UnsupportedMediaType(
            f"the relay accepts one signed event in structured mode ({STRUCTURED_MEDIA_TYPE}) "
            "per request; binary mode and batches are refused"
        )
    for parameter in filter(None, (p.strip() for p in parameters.split(";"))):
        name, _, setting = parameter.partition("=")
        if name.strip().lower() != "charset" or setting.strip().strip('"').lower() != "utf-8":
            raise UnsupportedMediaType("the only Content-Type parameter accepted is charset=utf-8")


def _unique_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object whose member names are unique (RFC 8259 4 leaves duplicates to the parser;
    `json` keeps the last, another reader the first, so which `id` was signed is ambiguous)."""
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise ValueError(f"member {twice!r} appears more than once in a JSON object")
    return document


def check_data(document: dict[str, object]) -> None:
    """The relay's data contract (README "What the relay accepts"): `data`, when present, is a
    JSON value with `datacontenttype` `application/json`; `data_base64` and any other
    `datacontenttype` are refused (ValueError), since the sink would get bytes the function never
    sends (a `text/plain` string would go out bare, `data_base64` decoded)."""
    if "data_base64" in document:
        raise ValueError("data_base64 is refused: the relay forwards JSON data only")
    content_type = document.get("datacontenttype")
    if "data" in document and content_type is None:
        raise ValueError("an event with data needs datacontenttype application/json")
    if content_type is not None and content_type != JSON_MEDIA_TYPE:
        raise ValueError(f"datacontenttype must be {JSON_MEDIA_TYPE} (data a JSON value)")


def build_relay(
    settings: RelaySettings, clock: Callable[[], float] = time.time
) -> tuple[Receiver, Forwarder]:
    """The relay's receiver and its forwarder (close it on shutdown). `clock` gives Unix seconds
    (tests control time with it)."""
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
        "Events forwarded to the sink, by outcome (accepted, failed, duplicate).",
        ["outcome"],
        registry=registry,
    )
    signatures_rejected = Counter(
        "relay_signatures_rejected",
        "Requests refused for their webhook-* headers or signature (401).",
        registry=registry,
    )
    cache = ReplayCache(settings.replay_capacity)
    remembered = Gauge(
        "relay_replay_cache_entries", "Event ids remembered against replay.", registry=registry
    )
    remembered.set_function(lambda: len(cache))
    pending: dict[str, asyncio.Future[Forwarded]] = {}

    def refuse_signature(error: SignatureError) -> Unauthorized:
        signatures_rejected.inc()
        log_fields(log, logging.WARNING, "signature rejected", reason=str(error))
        return Unauthorized("missing or invalid Standard Webhooks signature")

    def check(request: web.Request) -> None:
        try:
            request[_SIGNED] = check_headers(request.headers.items(), clock())
        except SignatureError as error:
            raise refuse_signature(error) from None
        for name in request.headers:
            if name[:3].lower() == "ce-":
                raise UnsignedContent(
                    "ce-* headers are not covered by the signature; send the whole event in "
                    "the body (structured mode)"
                )
        check_content_type(request.headers.get("Content-Type"))
        if request.content_length is None:
            raise LengthRequired(
                "send the event with a Content-Length; chunked bodies (and trailers) are refused"
            )

    def authenticate(request: web.Request, body: bytes) -> None:
        try:
            verify_body(settings.signing_key, request[_SIGNED], body)
        except SignatureError as error:
            raise refuse_signature(error) from None

    async def handle(delivery: Delivery) -> web.StreamResponse:
        signed = delivery.request[_SIGNED]
        [received] = delivery.events  # structured mode: exactly one
        if received.id != signed.msg_id:
            return _rejection(IdMismatch("the event id must equal webhook-id"))
        try:
            document = json.loads(delivery.body, object_pairs_hook=_unique_members)
            check_data(document)
            headers = binary_headers(document, received.content_type)
        except (UnforwardableAttribute, ValueError, RecursionError) as error:
            return _rejection(InvalidEvent(str(error)))
        until = signed.timestamp + TOLERANCE_SECONDS
        now = clock()
        # Re-checked here, not only when the head arrived: the body may have completed (or the
        # handler slot freed) after the window closed, when the cache no longer holds the id.
        if not within_window(signed.timestamp, now):
            late = SignatureError(
                "webhook-timestamp left the 5-minute window before the body ended"
            )
            return _rejection(refuse_signature(late))
        if cache.seen(received.id, now):
            cache.remember(received.id, until, now)  # a newer signed copy lives longer
            forwarded.labels("duplicate").inc()
            log_fields(log, logging.INFO, "duplicate not forwarded", id=received.id)
            return web.Response(status=202)
        underway = pending.get(received.id)
        if underway is not None:
            # The same event is being forwarded by another request: share its outcome, whatever
            # the clock says once it ends (it was acceptable now; looking again after the wait
            # could find the id neither pending nor remembered and forward it a second time).
            shared = await asyncio.shield(underway)
            if not shared.accepted:
                return _failure([shared])
            # This copy may be signed later than the one forwarded: it keeps the id longer.
            cache.remember(received.id, until, clock())
            forwarded.labels("duplicate").inc()
            log_fields(log, logging.INFO, "duplicate not forwarded", id=received.id)
            return web.Response(status=202)
        if cache.full(now, reserved=len(pending)):
            log_fields(log, logging.WARNING, "replay cache full", entries=len(cache))
            return error_response(
                503,
                "rate-limited",
                "more new events than RELAY_MAX_EVENTS_PER_SECOND allows; retry later",
                headers={"Retry-After": str(settings.retry_after_seconds)},
            )
        outcome: asyncio.Future[Forwarded] = asyncio.get_running_loop().create_future()
        pending[received.id] = outcome
        result: Forwarded | None = None
        try:
            result = await forwarder.forward(received, headers)
            if result.accepted:
                cache.remember(received.id, until, clock())
        finally:
            del pending[received.id]
            # Cancelled by a drain: whoever waits on this attempt is told it did not happen.
            outcome.set_result(result or Forwarded(received.id, False, 0, error="cancelled"))
        forwarded.labels("accepted" if result.accepted else "failed").inc()
        log_fields(
            log,
            logging.INFO if result.accepted else logging.ERROR,
            "event forwarded" if result.accepted else "event not forwarded",
            id=result.event_id,
            attempts=result.attempts,
            status=result.status,
            error=result.error,
        )
        return web.Response(status=202) if result.accepted else _failure([result])

    def _failure(failed: list[Forwarded]) -> web.Response:
        details = {"failed": [{"id": r.event_id, "status": r.status} for r in failed]}
        if all(result.sink_down for result in failed):
            wait = max([settings.retry_after_seconds, *(r.retry_after or 0 for r in failed)])
            return error_response(
                503,
                "sink-unavailable",
                "the sink did not accept the event; retry later",
                details=details,
                headers={"Retry-After": str(int(wait))},
            )
        return error_response(502, "sink-rejected", "the sink refused the event", details=details)

    receiver = Receiver(
        handle,
        name="relay",
        max_body_bytes=settings.server.max_body_bytes,
        max_in_flight=settings.server.max_in_flight,
        in_flight_bytes=settings.server.in_flight_bytes,
        body_timeout=settings.server.body_timeout_seconds,
        registry=registry,
        authenticate=authenticate,
        check_headers=check,
    )
    return receiver, forwarder


def _rejection(error: RequestRejected) -> web.Response:
    return error_response(error.status, error.code, error.message)
