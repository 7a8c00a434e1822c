"""Pure decisions of the OSS target: event -> object to write, outcome -> response event."""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse

from ..receiver.errors import InvalidEvent
from ..receiver.events import ReceivedEvent, dump_json, is_json_media_type, load_json
from .errors import Failure
from .key_rules import ROLLED_NAME_BYTES
from .keys import InvalidKey, object_key
from .templates import KeyTemplate, MissingAttribute, parse_template

if TYPE_CHECKING:
    from ..receiver.body import ArrivingBody

DEFAULT_CONTENT_TYPE = "application/octet-stream"
EVENT_CONTENT_TYPE = "application/cloudevents+json"
META_PREFIX = "x-oss-meta-ce-"
# OSS refuses requests whose user metadata (names + values) exceeds 8 KiB.
MAX_METADATA_BYTES = 8 * 1024
NDJSON_CONTENT_TYPE = "application/x-ndjson"
PLAIN_ID = parse_template("{id}")
ROLLED_KEY = "rolled object key (prefix + key template without {id} + object name)"
OMITTED_HEADER = "x-oss-meta-omitted-attributes"
# Printable ASCII except space, '"' and '%': what the CloudEvents HTTP binding leaves unencoded.
_SAFE = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "%"}
# A header value that arrives exactly as signed: visible ASCII, spaces and tabs only inside.
_HEADER_TEXT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?", re.ASCII)


@dataclass(frozen=True)
class ObjectWrite:
    """One PUT: `body` is bytes-like, or an ArrivingBody while a head start uploads it."""

    key: str
    body: bytes | bytearray | ArrivingBody
    headers: dict[str, str]

    @property
    def size(self) -> int:
        return len(self.body)


def plan_write(
    received: ReceivedEvent,
    *,
    prefix: str,
    store: str,
    template: KeyTemplate = PLAIN_ID,
    received_at: datetime | None = None,
) -> ObjectWrite:
    """The object for one event; raises InvalidEvent (400) when OSS could not take it as is.

    Key: `prefix` + `template` rendered for the event (`received_at`, default now, stands in for
    an event without `time`); a missing attribute is a 400 `missing-attribute`.

    STORE=data: the data bytes as received, Content-Type = datacontenttype (octet-stream if none).
    STORE=event: the whole event in the JSON event format. Both carry the context attributes as
    `x-oss-meta-ce-<name>` metadata, values as sent, percent-encoded like CloudEvents binary-mode
    headers (so they stay exact: decoding gives back the string that was sent).
    """
    what = (
        "object key (prefix + id)" if template.is_plain_id else "object key (prefix + key template)"
    )
    key = object_key(prefix, render_key(template, received, received_at or _now()), what)
    headers = metadata_headers(received.attributes)
    if store == "event":
        body = event_document(received)
        headers["Content-Type"] = EVENT_CONTENT_TYPE
    else:
        body = received.data
        headers["Content-Type"] = received.content_type or DEFAULT_CONTENT_TYPE
    for name, value in headers.items():
        # The SDK signs each value as given; what arrives is trimmed, so anything else would be
        # a SignatureDoesNotMatch, which is not the credentials' fault (see credentials.py).
        if not _HEADER_TEXT.fullmatch(value):
            raise InvalidEvent(f"{name} would not reach OSS as sent (not visible ASCII)")
    return ObjectWrite(key=key, body=body, headers=headers)


def plan_writes(
    events: list[ReceivedEvent],
    *,
    prefix: str,
    store: str,
    batch: bool,
    template: KeyTemplate = PLAIN_ID,
    received_at: datetime | None = None,
) -> list[ObjectWrite]:
    """The writes of one request, in order; InvalidEvent (400) if any event cannot be written.

    Two events of one request whose writes have the same key are one object: identical writes
    (an event repeated in a batch) are accepted and store the same bytes; different writes (the
    same id from two sources) are refused with `invalid-key`, since one would silently replace
    the other. With `batch`, the error carries the event's index.
    """
    writes: list[ObjectWrite] = []
    by_key: dict[str, ObjectWrite] = {}
    received_at = received_at or _now()
    for index, received in enumerate(events):
        try:
            write = plan_write(
                received, prefix=prefix, store=store, template=template, received_at=received_at
            )
            earlier = by_key.setdefault(write.key, write)
            if earlier != write:
                raise InvalidKey(
                    "same object key as an earlier event of the batch but a different event "
                    "(the same id from another source, or with other content); one would "
                    "replace the other"
                )
        except InvalidEvent as error:
            if batch:
                error.index = index
                error.message = f"event {index}: {error.message}"
            raise
        writes.append(write)
    return writes


@dataclass(frozen=True)
class Line:
    """One event of a rolled object: the group it goes to (`prefix` + template without `{id}`),
    its time (`time` in UTC, else the time of receipt) and its NDJSON line (newline included)."""

    group: str
    time: datetime
    data: bytes
    id: str
    source: str


def plan_lines(
    events: list[ReceivedEvent],
    *,
    prefix: str,
    template: KeyTemplate,
    batch: bool,
    received_at: datetime | None = None,
    name_bytes: int = max(ROLLED_NAME_BYTES.values()),
) -> list[Line | int]:
    """The NDJSON lines of one request's events, for rolled objects; InvalidEvent (400) if any
    event cannot be placed (missing attribute, a group key that breaks the key rules once the
    object's name, `name_bytes` of ASCII, completes it: the whole final key is checked).

    Each entry is a Line, or the index of an earlier identical event of the request (the same
    source and id: the receiver has already refused copies that differ), which shares its line.
    A line is the whole event in the JSON event format (`event_document`), which holds no raw
    newline (JSON escapes control characters), then `\n`.
    """
    group_template = template.without_id()
    received_at = received_at or _now()
    entries: list[Line | int] = []
    seen: dict[tuple[str, str], int] = {}
    for index, received in enumerate(events):
        identity = (str(received.attributes.get("source", "")), received.id)
        if identity in seen:
            entries.append(seen[identity])
            continue
        try:
            group = prefix + render_key(group_template, received, received_at)
            # The object name (time + random + extension, ASCII) completes the last segment.
            object_key(group, "0" * name_bytes, ROLLED_KEY)
        except InvalidEvent as error:
            if batch:
                error.index = index
                error.message = f"event {index}: {error.message}"
            raise
        seen[identity] = index
        entries.append(
            Line(
                group=group,
                time=event_time(received, received_at),
                data=ndjson_line(received),
                id=received.id,
                source=identity[0],
            )
        )
    return entries


class MissingAttributeError(InvalidEvent):
    """The event lacks an attribute the key template names: 400, nothing written."""

    code = "missing-attribute"


def render_key(template: KeyTemplate, received: ReceivedEvent, received_at: datetime) -> str:
    """`template` rendered for the event (its time, else `received_at`); raises
    MissingAttributeError (400) naming an attribute the event lacks."""
    try:
        return template.render(received.attributes, lambda: event_time(received, received_at))
    except MissingAttribute as error:
        raise MissingAttributeError(str(error)) from None


EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
LATEST = datetime.max.replace(tzinfo=timezone.utc)


def event_time(received: ReceivedEvent, received_at: datetime) -> datetime:
    """The event's `time` in UTC, or `received_at` in UTC when it has none.

    RFC 3339 allows years 0000-9999 with any offset, Python's datetime only 0001-9999 in UTC:
    a time whose UTC falls outside (`0000-...`, `0001-01-01T00:00:00+01:00`,
    `9999-12-31T23:59:59-01:00`) is clamped to EARLIEST / LATEST, so it still has one stable key.
    """
    if "time" not in received.attributes:
        return _utc(received_at)
    sent = str(received.attributes["time"])
    if sent.startswith("0000-"):
        # The receiver keeps such a time as sent but builds the SDK event without it, and the
        # SDK then fills in the current time: not the event's.
        return _year_zero_utc(sent)
    return _utc(received.event.get_time())


def _utc(when: datetime) -> datetime:
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        return EARLIEST if when.year == 1 else LATEST


def _year_zero_utc(value: str) -> datetime:
    """A valid RFC 3339 time in year 0000 (checked by the receiver) in UTC: computed in 2000,
    which has the same calendar (both leap years); a UTC time still in year 0000 is EARLIEST."""
    if value[17:19] == "60":  # a leap second, as the receiver reads it
        value = value[:17] + "59" + value[19:]
    shifted = isoparse("2000" + value[4:]).astimezone(timezone.utc)
    return shifted.replace(year=1) if shifted.year == 2001 else EARLIEST


def ndjson_line(received: ReceivedEvent) -> bytes:
    """The event as one NDJSON line: `event_document` with U+2028/U+2029 escaped (valid JSON
    either way, but line readers such as Python's `str.splitlines` break on them), then `\n`."""
    document = event_document(received)
    if b"\xe2\x80" in document:
        document = document.replace("\u2028".encode(), b"\\u2028")
        document = document.replace("\u2029".encode(), b"\\u2029")
    return document + b"\n"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def metadata_headers(attributes: dict[str, Any]) -> dict[str, str]:
    """`x-oss-meta-ce-<name>` per attribute. When they exceed OSS's 8 KiB of user metadata (names
    without `x-oss-meta-`, plus values), the largest are left out, largest first, and named in
    `x-oss-meta-omitted-attributes` (comma-separated; outside the `ce-` names, so no extension
    can collide with it): the event is stored all the same (a 4xx would drop a valid event)."""
    headers = {}
    for name, value in attributes.items():
        if value is None:
            continue
        headers[META_PREFIX + name] = encode_value(value)
    omitted: list[str] = []

    def size() -> int:
        note = len(OMITTED_HEADER) - len("x-oss-meta-") + len(",".join(omitted)) if omitted else 0
        return note + sum(len(name) - len("x-oss-meta-") + len(v) for name, v in headers.items())

    while size() > MAX_METADATA_BYTES:
        largest = max(headers, key=lambda name: len(name) + len(headers[name]))
        omitted.append(largest[len(META_PREFIX) :])
        del headers[largest]
    if omitted:
        headers[OMITTED_HEADER] = ",".join(omitted)
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
    return dump_json(document)  # Decimals keep the digits load_json read


_NOT_JSON = object()


def _json_value(received: ReceivedEvent) -> Any:
    if not is_json_media_type(received.content_type):
        return _NOT_JSON
    try:
        return load_json(received.data, "data")
    except InvalidEvent:
        return _NOT_JSON


def success_event(
    received: ReceivedEvent,
    *,
    source: str,
    bucket: str,
    write: ObjectWrite,
    etag: str,
    line: int | None = None,
) -> CloudEvent:
    """The response event for a stored event: data `{bucket, key, etag, size}` (size: the
    object's bytes as stored), plus `line` (1-based NDJSON line) when it is in a rolled object."""
    data: dict[str, Any] = {"bucket": bucket, "key": write.key, "etag": etag, "size": write.size}
    if line is not None:
        data["line"] = line
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
