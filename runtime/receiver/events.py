"""Pure parsing of CloudEvents 1.0 HTTP requests: (headers, body) -> validated events with raw data.

cloudevents 2.2.0 builds the events, but it invents a missing id, accepts any time format until
`isoparse` raises, has no batch support and re-types the data (dict / str / bytes). So the required
attributes are checked here first, batches are split here, and every event carries its data as the
exact bytes to store:

- binary mode: the HTTP body, untouched;
- structured / batch: `data_base64` decoded, a string `data` with a non-JSON `datacontenttype` as
  UTF-8, any other `data` serialised as compact JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from cloudevents.core.bindings.http import HTTPMessage, from_binary
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

from runtime.receiver.errors import InvalidEvent, UnsupportedMediaType

Mode = Literal["binary", "structured", "batch"]

STRUCTURED_MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
SPECVERSION = "1.0"

# RFC 3339 date-time (the CloudEvents `time` format); isoparse alone also accepts "2024-01-01" etc.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", re.ASCII
)
_JSON_MEDIA_TYPE = JSONFormat.JSON_CONTENT_TYPE_PATTERN


@dataclass(frozen=True, slots=True)
class ReceivedEvent:
    """One validated event. `data` is the exact bytes to store or forward (b"" when absent)."""

    event: CloudEvent
    data: bytes
    mode: Mode
    content_type: str | None
    """`datacontenttype`, or `application/json` for a structured JSON `data` without one (the JSON
    event format implies it); None when the sender gave none."""
    attributes: dict[str, Any]
    """The context attributes as sent (the SDK adds a `time` to events without one; not here)."""

    @property
    def id(self) -> str:
        return self.event.get_id()

    @property
    def type(self) -> str:
        return self.event.get_type()


class _RawDataFormat(JSONFormat):
    """JSONFormat whose binary-mode data is the body bytes themselves (no decoding, no copy)."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> bytes:  # type: ignore[override]
        return body


_RAW_DATA = _RawDataFormat()


def media_type(content_type: str | None) -> str:
    """The lower-cased media type without parameters ("" when absent)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def detect_mode(headers: Iterable[tuple[str, str]]) -> tuple[Mode, str | None]:
    """Decide the content mode from the headers; returns (mode, Content-Type)."""
    content_type = None
    has_ce_header = False
    for name, value in headers:
        lower = name.lower()
        if lower == "content-type" and content_type is None:
            content_type = value
        elif lower.startswith("ce-"):
            has_ce_header = True
    kind = media_type(content_type)
    if kind == BATCH_MEDIA_TYPE:
        return "batch", content_type
    if kind == STRUCTURED_MEDIA_TYPE:
        return "structured", content_type
    if kind.startswith("application/cloudevents"):
        raise UnsupportedMediaType(
            f"unsupported CloudEvents format {kind!r}: only {STRUCTURED_MEDIA_TYPE} "
            f"and {BATCH_MEDIA_TYPE} are accepted"
        )
    if has_ce_header:
        return "binary", content_type
    raise UnsupportedMediaType(
        "not a CloudEvent: expected binary mode (ce-specversion, ce-id, ce-source, ce-type) "
        f"or Content-Type {STRUCTURED_MEDIA_TYPE} / {BATCH_MEDIA_TYPE}"
    )


def parse_events(
    headers: Iterable[tuple[str, str]], body: bytes
) -> tuple[Mode, list[ReceivedEvent]]:
    """Parse one HTTP request into events, or raise InvalidEvent / UnsupportedMediaType.

    `headers` is any iterable of (name, value) pairs, e.g. `request.headers.items()` (repeated
    headers are seen individually, so a repeated `ce-*` header is rejected instead of guessed).
    """
    header_list = list(headers)
    mode, _ = detect_mode(header_list)
    if mode == "binary":
        return mode, [parse_binary(header_list, body)]
    document = _load_json(body)
    if mode == "structured":
        return mode, [parse_structured(document)]
    if not isinstance(document, list):
        raise InvalidEvent("a batch must be a JSON array of CloudEvents")
    return mode, [parse_structured(item, index=i, mode="batch") for i, item in enumerate(document)]


def parse_binary(headers: Iterable[tuple[str, str]], body: bytes) -> ReceivedEvent:
    """Binary mode: attributes from `ce-*` headers, data = the body bytes as received."""
    attributes: dict[str, str] = {}
    content_type = None
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("ce-"):
            attribute = lower[3:]
            if attribute in attributes:
                raise InvalidEvent(f"header {name!r} appears more than once")
            attributes[attribute] = unquote(value)
        elif lower == "content-type" and content_type is None:
            content_type = value
    _check_required({a: attributes.get(a) for a in REQUIRED_ATTRIBUTES}, "header ce-")
    if "time" in attributes:
        _check_time(attributes["time"], "header ce-time")
    if "datacontenttype" in attributes:
        raise InvalidEvent("binary mode takes datacontenttype from Content-Type, not a ce- header")
    # The SDK decodes the headers again itself, so it gets the raw (still percent-encoded) values.
    sdk_headers = {name.lower(): value for name, value in headers if name.lower().startswith("ce-")}
    if content_type is not None:
        sdk_headers["content-type"] = content_type
    try:
        event = from_binary(HTTPMessage(headers=sdk_headers, body=body), _RAW_DATA, CloudEvent)
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise InvalidEvent(_sdk_message(error)) from None
    return ReceivedEvent(
        event=event,
        data=body,
        mode="binary",
        content_type=content_type or None,
        attributes=_as_sent(event, "time" in attributes),
    )


def parse_structured(
    document: object, *, index: int | None = None, mode: Mode = "structured"
) -> ReceivedEvent:
    """One event in the JSON event format (a structured body, or one element of a batch)."""
    where = "" if index is None else f"event {index}: "
    try:
        return _parse_structured(document, where, mode)
    except InvalidEvent as error:
        error.index = index
        raise


def _parse_structured(document: object, where: str, mode: Mode) -> ReceivedEvent:
    if not isinstance(document, dict):
        raise InvalidEvent(f"{where}a CloudEvent must be a JSON object")
    attributes = dict(document)
    _check_required({a: attributes.get(a) for a in REQUIRED_ATTRIBUTES}, f"{where}attribute ")
    has_data = attributes.get("data") is not None
    has_base64 = attributes.get("data_base64") is not None
    if has_data and has_base64:
        raise InvalidEvent(f"{where}'data' and 'data_base64' are mutually exclusive")
    data_value = attributes.pop("data", None)
    base64_value = attributes.pop("data_base64", None)
    declared_type = attributes.get("datacontenttype")
    if declared_type is not None and (not isinstance(declared_type, str) or not declared_type):
        raise InvalidEvent(f"{where}attribute 'datacontenttype' must be a non-empty string")
    if "time" in attributes:
        if not isinstance(attributes["time"], str):
            raise InvalidEvent(f"{where}attribute 'time' must be an RFC 3339 string")
        attributes["time"] = _check_time(attributes["time"], f"{where}attribute ")
    content_type = declared_type
    if has_base64:
        data = _decode_base64(base64_value, where)
    elif has_data:
        data = _serialise_data(data_value, declared_type)
        if content_type is None:
            content_type = "application/json"
    else:
        data = b""
    try:
        event = CloudEvent(attributes, data)
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise InvalidEvent(where + _sdk_message(error)) from None
    return ReceivedEvent(
        event=event,
        data=data,
        mode=mode,
        content_type=content_type,
        attributes=_as_sent(event, "time" in document),
    )


def _as_sent(event: CloudEvent, time_sent: bool) -> dict[str, Any]:
    attributes = dict(event.get_attributes())
    if not time_sent:
        attributes.pop("time", None)
    return attributes


def _load_json(body: bytes) -> object:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidEvent("body is not valid UTF-8 JSON") from None


def _check_required(values: dict[str, object], label: str) -> None:
    for name, value in values.items():
        if value is None:
            raise InvalidEvent(f"missing required {label}{name}")
        if not isinstance(value, str) or not value:
            raise InvalidEvent(f"{label}{name} must be a non-empty string")
    if values["specversion"] != SPECVERSION:
        raise InvalidEvent(f"unsupported specversion: only {SPECVERSION!r} is accepted")


def _check_time(value: str, label: str):
    if not _RFC3339.match(value):
        raise InvalidEvent(f"{_label(label, 'time')} is not an RFC 3339 timestamp")
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        raise InvalidEvent(f"{_label(label, 'time')} is not a valid date and time") from None


def _label(label: str, name: str) -> str:
    return label if label.endswith(name) else f"{label}{name}"


def _decode_base64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidEvent(f"{where}'data_base64' must be a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEvent(f"{where}'data_base64' is not valid base64") from None


def _serialise_data(value: object, content_type: str | None) -> bytes:
    if isinstance(value, str) and content_type and not _JSON_MEDIA_TYPE.match(content_type):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sdk_message(error: Exception) -> str:
    # The SDK's messages name attributes and rules, never values; keep them one line.
    return " ".join(str(error).split()) or type(error).__name__
