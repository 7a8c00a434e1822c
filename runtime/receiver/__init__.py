"""Shared HTTP receiving core for the container runtimes (OSS target, relay).

A runtime supplies an async `EventHandler(delivery) -> aiohttp response`; the core does the rest:

    from . import (Receiver, Delivery, EnvReader, ServerSettings, load_or_exit,
        read_server_settings, configure_logging, run, binary_response, batch_response,
        error_response)

    async def handle(delivery: Delivery) -> web.StreamResponse:
        for received in delivery.events:          # ReceivedEvent: .event (cloudevents CloudEvent),
            ...                                   #  .data (exact bytes), .content_type, .id, .type
        return binary_response(reply_event)       # or batch_response([...]) / error_response(...)

    # A runtime's __main__: settings (exit 2 + one line on error), logging, serve until SIGTERM.
    raise SystemExit(main("relay", read_settings, build))   # build(settings) -> (Receiver, closer)

What the core guarantees before the handler runs:
- `POST /` accepts binary, structured (`application/cloudevents+json`) and batch
  (`application/cloudevents-batch+json`) modes, chunked or not;
- header bytes that are not UTF-8: 400 `invalid-header`; then an optional
  `check_headers(request)` hook (raise a RequestRejected, e.g. Unauthorized) runs before anything
  of the body is read or reserved and before `100 Continue` is sent;
- 413 when the body exceeds `max_body_bytes` (decided from Content-Length before reading, or while
  streaming; the rest is never read);
- memory bounded by bytes: a request reserves its size in an `in_flight_bytes` budget before
  its body is read (a structured or batch body, once read, JSON_MEMORY_FACTOR times its size;
  503 `busy` + Retry-After when the budget stays full for `body_timeout`); the body is read into
  one buffer (a bytearray) and must arrive within `body_timeout` seconds (408 and close); a
  sender that disconnects mid-body is counted (`<name>_client_disconnects_total`), not logged as
  an error;
- an optional `authenticate(request, raw_body)` hook runs after the size limit and before parsing
  (raise `Unauthorized` for 401);
- 400 + JSON `{"error": "invalid-event", "message", "index"?}` for anything that breaks CloudEvents
  1.0.2, its HTTP binding or JSON format (see `runtime.receiver.events`): a missing/empty id,
  source, type or specversion, specversion other than 1.0, values outside the type system, a non
  RFC 3339 time, header bytes that are not UTF-8, non-strict JSON (NaN, deep nesting, numbers
  beyond the int() limit) or base64; 415 for anything that is not a CloudEvent;
- at most `max_in_flight` handlers at once (a request takes a slot only once its body is complete);
- an optional `head_start(event, arriving_body)` hook may begin acting on a binary-mode event
  whose headers are valid while its body (with a Content-Length, no `authenticate`) arrives; the
  task it returns reaches the handler as `Delivery.head_start`, or is cancelled when the request
  ends without reaching it (the body aborted, the drain);
- 503 + `Retry-After` while draining, and for requests still unfinished when the drain times out
  (their handlers are cancelled); 500 if the handler raises (logged by exception type only);
- `GET /healthz` 200, `GET /readyz` 200 or 503 (draining / `is_ready()` false), `GET /metrics`
  (Prometheus text from the receiver's own registry: `receiver.registry`, add your own metrics
  there; see `ReceiverMetrics` for the names).

`main()` applies the runtime's ServerSettings (`Receiver.apply`): limits, the budget derived from
MEMORY_LIMIT_BYTES (else the cgroup limit), HOST, the header and body deadlines.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import Authenticator, Delivery, EventHandler, HeaderCheck, HeadStart, Receiver
    from .body import ArrivingBody, BodyAborted
    from .errors import (
        BodyTooLarge,
        Busy,
        InvalidEvent,
        InvalidHeader,
        RequestRejected,
        RequestTimeout,
        Unauthorized,
        UnsupportedMediaType,
    )
    from .events import (
        BATCH_MEDIA_TYPE,
        STRUCTURED_MEDIA_TYPE,
        ReceivedEvent,
        parse_events,
    )
    from .logs import configure_logging, log_fields
    from .responses import batch_response, binary_response, error_response
    from .retry import RetryPolicy
    from .server import BackgroundServer, main, run, serve
    from .settings import (
        EnvReader,
        ServerSettings,
        SettingError,
        load_or_exit,
        read_server_settings,
    )

# Loaded on first use (PEP 562): `runtime.receiver.settings` (the memory rule the components
# check against) must import without aiohttp, which a Pulumi program's environment does not have.
_SUBMODULES = {
    "Authenticator": "app",
    "Delivery": "app",
    "EventHandler": "app",
    "HeaderCheck": "app",
    "HeadStart": "app",
    "Receiver": "app",
    "ArrivingBody": "body",
    "BodyAborted": "body",
    "BodyTooLarge": "errors",
    "Busy": "errors",
    "InvalidEvent": "errors",
    "InvalidHeader": "errors",
    "RequestRejected": "errors",
    "RequestTimeout": "errors",
    "Unauthorized": "errors",
    "UnsupportedMediaType": "errors",
    "BATCH_MEDIA_TYPE": "events",
    "STRUCTURED_MEDIA_TYPE": "events",
    "ReceivedEvent": "events",
    "parse_events": "events",
    "configure_logging": "logs",
    "log_fields": "logs",
    "batch_response": "responses",
    "binary_response": "responses",
    "error_response": "responses",
    "RetryPolicy": "retry",
    "BackgroundServer": "server",
    "main": "server",
    "run": "server",
    "serve": "server",
    "EnvReader": "settings",
    "ServerSettings": "settings",
    "SettingError": "settings",
    "load_or_exit": "settings",
    "read_server_settings": "settings",
}


def __getattr__(name: str) -> Any:
    module = _SUBMODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BATCH_MEDIA_TYPE",
    "STRUCTURED_MEDIA_TYPE",
    "ArrivingBody",
    "Authenticator",
    "BackgroundServer",
    "BodyAborted",
    "BodyTooLarge",
    "Busy",
    "Delivery",
    "EnvReader",
    "EventHandler",
    "HeadStart",
    "HeaderCheck",
    "InvalidEvent",
    "InvalidHeader",
    "ReceivedEvent",
    "Receiver",
    "RequestRejected",
    "RequestTimeout",
    "RetryPolicy",
    "ServerSettings",
    "SettingError",
    "Unauthorized",
    "UnsupportedMediaType",
    "batch_response",
    "binary_response",
    "configure_logging",
    "error_response",
    "load_or_exit",
    "log_fields",
    "main",
    "parse_events",
    "read_server_settings",
    "run",
    "serve",
]
