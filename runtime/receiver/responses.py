"""HTTP answers: response events in binary mode, batches of them, and JSON error bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aiohttp import web
from cloudevents.core.bindings.http import to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from .errors import RequestRejected
from .events import BATCH_MEDIA_TYPE

_JSON = JSONFormat()


def binary_response(
    event: CloudEvent, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Answer with one CloudEvent in binary mode (attributes as `ce-*` headers, data as body)."""
    message = to_binary(event, _JSON)
    merged = dict(message.headers)
    if headers:
        merged.update(headers)
    return web.Response(status=status, body=message.body, headers=merged)


def batch_response(
    events: Sequence[CloudEvent], *, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Answer with `application/cloudevents-batch+json` (each element in the JSON event format)."""
    body = b"[" + b",".join(_JSON.write(event) for event in events) + b"]"
    merged = {"Content-Type": BATCH_MEDIA_TYPE}
    if headers:
        merged.update(headers)
    return web.Response(status=status, body=body, headers=merged)


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    details: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """JSON body `{"error": code, "message": ..., **details}`; never put event data in it."""
    body: dict[str, object] = {"error": code, "message": message}
    if details:
        body.update(details)
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def rejection_response(error: RequestRejected) -> web.Response:
    """The answer for a request refused before any side effect (400, 413, 415)."""
    return web.Response(
        status=error.status,
        body=json.dumps(error.to_json()).encode(),
        content_type="application/json",
    )
