"""Pure decisions of the OSS target: event -> object to write, outcome -> response event."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from runtime.alibaba_oss_target.errors import Failure
from runtime.alibaba_oss_target.keys import object_key
from runtime.receiver.errors import InvalidEvent
from runtime.receiver.events import ReceivedEvent

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
    `x-oss-meta-ce-<name>` metadata, values percent-encoded like CloudEvents binary-mode headers.
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


def encode_value(value: Any) -> str:
    if isinstance(value, datetime):
        text = value.isoformat()
        if text.endswith("+00:00"):
            text = text[:-6] + "Z"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if all(c in _SAFE for c in text):
        return text
    return "".join(c if c in _SAFE else _percent(c) for c in text)


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def event_document(received: ReceivedEvent) -> bytes:
    """The event in the JSON event format: JSON data inline when it is JSON, else data_base64."""
    document: dict[str, Any] = {}
    for name, value in received.attributes.items():
        if isinstance(value, datetime):
            document[name] = encode_value(value)
        elif value is not None:
            document[name] = value
    if received.content_type and "datacontenttype" not in document:
        document["datacontenttype"] = received.content_type
    if received.data:
        inline = _json_value(received)
        if inline is not _NOT_JSON:
            document["data"] = inline
        else:
            document["data_base64"] = base64.b64encode(received.data).decode("ascii")
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


_NOT_JSON = object()


def _json_value(received: ReceivedEvent) -> Any:
    content_type = received.content_type or ""
    if not JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(content_type):
        return _NOT_JSON
    try:
        return json.loads(received.data)
    except (UnicodeDecodeError, ValueError):
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
