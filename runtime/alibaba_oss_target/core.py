"""Pure decisions of the OSS target: event -> object to write, outcome -> response event."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from typing import Any

from cloudevents.core.v1.event import CloudEvent

from ..receiver.errors import InvalidEvent
from ..receiver.events import ReceivedEvent, is_json_media_type, load_json
from .errors import Failure
from .keys import InvalidKey, object_key

DEFAULT_CONTENT_TYPE = "application/octet-stream"
EVENT_CONTENT_TYPE = "application/cloudevents+json"
META_PREFIX = "x-oss-meta-ce-"
# OSS refuses requests whose user metadata (names + values) exceeds 8 KiB.
MAX_METADATA_BYTES = 8 * 1024
# Printable ASCII except space, '"' and '%': what the CloudEvents HTTP binding leaves unencoded.
_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "%"}


@dataclass(frozen=True)
class ObjectWrite:
    key: str
    body: bytes
    headers: dict[str, str]

    @property
    def size(self) -> int:
        return len(self.body)


def plan_write(received: ReceivedEvent, *, prefix: str, store: str) -> ObjectWrite:
    """The object for one event; raises InvalidEvent (400) when OSS could not take it as is.

    STORE=data: the data bytes as received, Content-Type = datacontenttype (octet-stream if none).
    STORE=event: the whole event in the JSON event format. Both carry the context attributes as
    `x-oss-meta-ce-<name>` metadata, values as sent, percent-encoded like CloudEvents binary-mode
    headers (so they stay exact: decoding gives back the string that was sent).
    """
    key = object_key(prefix, received.id)
    headers = metadata_headers(received.attributes)
    if store == "event":
        body = event_document(received)
        headers["Content-Type"] = EVENT_CONTENT_TYPE
    else:
        body = received.data
        headers["Content-Type"] = received.content_type or DEFAULT_CONTENT_TYPE
    return ObjectWrite(key=key, body=body, headers=headers)


def plan_writes(
    events: list[ReceivedEvent], *, prefix: str, store: str, batch: bool
) -> list[ObjectWrite]:
    """The writes of one request, in order; InvalidEvent (400) if any event cannot be written.

    Two events of one request whose writes have the same key are one object: identical writes
    (an event repeated in a batch) are accepted and store the same bytes; different writes (the
    same id from two sources) are refused with `invalid-key`, since one would silently replace
    the other. With `batch`, the error carries the event's index.
    """
    writes: list[ObjectWrite] = []
    by_key: dict[str, ObjectWrite] = {}
    for index, received in enumerate(events):
        try:
            write = plan_write(received, prefix=prefix, store=store)
            earlier = by_key.setdefault(write.key, write)
            if earlier != write:
                raise InvalidKey(
                    "same object key as an earlier event of the batch with a different event "
                    "(same id, different source or content)"
                )
        except InvalidEvent as error:
            if batch:
                error.index = index
                error.message = f"event {index}: {error.message}"
            raise
        writes.append(write)
    return writes


def metadata_headers(attributes: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for name, value in attributes.items():
        if value is None:
            continue
        headers[META_PREFIX + name] = encode_value(value)
    size = sum(len(name) - len("x-oss-meta-") + len(value) for name, value in headers.items())
    if size > MAX_METADATA_BYTES:
        raise InvalidEvent(
            f"the event attributes take {size} bytes as object metadata; OSS allows "
            f"{MAX_METADATA_BYTES}"
        )
    return headers


def encode_value(value: str | int | bool) -> str:
    """An attribute value (str, int or bool, as `ReceivedEvent.attributes` holds them) as header
    text: its CloudEvents canonical string, percent-encoded per HTTP binding 3.1.3.2."""
    text = ("true" if value else "false") if isinstance(value, bool) else str(value)
    if all(c in _SAFE for c in text):
        return text
    return "".join(c if c in _SAFE else _percent(c) for c in text)


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def event_document(received: ReceivedEvent) -> bytes:
    """The event in the JSON event format: JSON data inline when it is JSON, else data_base64."""
    document: dict[str, Any] = dict(received.attributes)
    if received.content_type and "datacontenttype" not in document:
        document["datacontenttype"] = received.content_type
    if received.data:
        inline = _json_value(received)
        if inline is not _NOT_JSON:
            try:
                return _dumps({**document, "data": inline})
            except (RecursionError, UnicodeEncodeError):
                # Nested deeper than the encoder allows once wrapped, or a lone surrogate that
                # cannot be UTF-8: not JSON this document can hold, so keep it exact below.
                pass
        document["data_base64"] = base64.b64encode(received.data).decode("ascii")
    return _dumps(document)


def _dumps(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_NOT_JSON = object()


def _json_value(received: ReceivedEvent) -> Any:
    if not is_json_media_type(received.content_type):
        return _NOT_JSON
    try:
        return load_json(received.data, "data")
    except InvalidEvent:
        return _NOT_JSON


def success_event(
    received: ReceivedEvent, *, source: str, bucket: str, write: ObjectWrite, etag: str
) -> CloudEvent:
    data = {"bucket": bucket, "key": write.key, "etag": etag, "size": write.size}
    return _response(received, source, write.key, "success", data)


def error_event(
    received: ReceivedEvent, *, source: str, bucket: str, key: str, failure: Failure
) -> CloudEvent:
    data = {"bucket": bucket, "key": key, **failure.to_json()}
    return _response(received, source, key, "error", data)


def _response(
    received: ReceivedEvent, source: str, key: str, category: str, data: dict[str, Any]
) -> CloudEvent:
    return CloudEvent(
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "type": received.type + ".response",
            "source": source,
            "subject": key,
            "datacontenttype": "application/json",
            "category": category,
        },
        json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
    )
