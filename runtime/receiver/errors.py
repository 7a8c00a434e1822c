"""Request errors that map to one HTTP status each; their messages go into the JSON error body.

Messages name the problem (attribute, header, limit) and never echo event data, so they are safe to
return to the sender and to log.
"""

from __future__ import annotations


class RequestRejected(Exception):
    """Base class: the request is refused before any side effect; `status` is the HTTP answer."""

    status = 400
    code = "bad-request"

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.code, "message": self.message}
        if self.index is not None:
            body["index"] = self.index
        return body


class Unauthorized(RequestRejected):
    """The request is not authenticated (e.g. a missing or bad webhook signature)."""

    status = 401
    code = "unauthorized"


class InvalidEvent(RequestRejected):
    """Not a valid CloudEvents 1.0 event (missing or bad attribute, bad JSON, bad base64)."""

    status = 400
    code = "invalid-event"


class UnsupportedMediaType(RequestRejected):
    """Neither binary mode (`ce-*` headers) nor a CloudEvents JSON media type."""

    status = 415
    code = "unsupported-media-type"


class BodyTooLarge(RequestRejected):
    """The body exceeds the limit (announced by Content-Length, or seen while streaming)."""

    status = 413
    code = "body-too-large"


class InvalidHeader(RequestRejected):
    """A header value that is not valid UTF-8 on the wire (aiohttp hands such bytes over as lone
    surrogates, which no encoder accepts) or otherwise unusable."""

    status = 400
    code = "invalid-header"


class RequestTimeout(RequestRejected):
    """The body did not arrive within the read deadline; the connection is closed."""

    status = 408
    code = "request-timeout"


class Busy(RequestRejected):
    """The in-flight memory budget stayed full for the whole wait; retry later (Retry-After)."""

    status = 503
    code = "busy"
