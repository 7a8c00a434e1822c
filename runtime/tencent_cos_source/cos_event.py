"""COS notification -> CloudEvents: the pure core of the Tencent COS source (no I/O, no clock).

Standard library only, and cheap to import: this file ships in the SCF zip next to `index.py`.

Event ids are UUIDv5 over the canonical JSON of the *scrubbed* record, because
- SCF's asynchronous retry re-sends the identical notification, so the same record gives the same id
  and receivers (the OSS target, any deduplicating broker) can drop the duplicate;
- the id depends only on what the receiver gets in `data`, so it can be recomputed from the event;
- no credential (the uploader's `Authorization`) feeds any value we derive or send.
Two records that are identical after scrubbing describe the same COS event (real records differ at
least in `x-cos-request-id`), so they get the same id and are sent once.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timezone
from urllib.parse import unquote

EVENT_TYPE = "tencent-cloud-cos-event"
SPECVERSION = "1.0"
DATACONTENTTYPE = "application/json"
# uuid5(NAMESPACE_URL, "https://cloudevents-connectors/tencent-cos-source/record"); fixed forever,
# changing it would change every id.
ID_NAMESPACE = bytes.fromhex("829a3ddbbe375f2db194c88a94cb6852")

# A request header whose name contains one of these (in any case) carries credentials: never sent.
SENSITIVE_HEADER_WORDS = ("auth", "token", "signature", "secret", "cookie", "credential", "session")
# The patterns below serve rare inputs, so they are compiled (and cached by `re`) on first use
# rather than at import: every compiled pattern is part of the cold start.
_KEY_PREFIX = r"^/\d+/[^/]+/"
_ISO_FRACTION = r"\.(\d+)"


class NotACosNotification(ValueError):
    """The SCF event is not a COS notification this source can turn into CloudEvents."""


class CosEvent:
    """One CloudEvent: its attributes (wire strings) and its JSON data already serialised."""

    __slots__ = ("attributes", "body", "record")

    def __init__(self, attributes: dict[str, str], body: bytes, record: dict) -> None:
        self.attributes = attributes
        self.body = body
        self.record = record  # scrubbed; for DEBUG_MODE logs

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")


def events_from_notification(
    notification: object, source: str, now: datetime
) -> tuple[list[CosEvent], int]:
    """All events of a notification (validated as a whole first) and how many duplicates were
    dropped. `now` is used only for a record without `eventTime`."""
    records = records_of(notification)
    events: list[CosEvent] = []
    seen: set[str] = set()
    for index, record in enumerate(records):
        event = event_from_record(record, source, now, index)
        if event.id not in seen:
            seen.add(event.id)
            events.append(event)
    return events, len(records) - len(events)


def records_of(notification: object) -> list[dict]:
    if not isinstance(notification, dict) or "Records" not in notification:
        raise NotACosNotification("not a COS notification: no 'Records'")
    records = notification["Records"]
    if not isinstance(records, list) or not records:
        raise NotACosNotification("not a COS notification: 'Records' must be a non-empty list")
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise NotACosNotification(f"record {index} is not an object")
        for part in ("cos", "event"):
            if not isinstance(record.get(part), dict):
                raise NotACosNotification(f"record {index} has no '{part}' object")
    return records


def event_from_record(record: dict, source: str, now: datetime, index: int = 0) -> CosEvent:
    scrubbed = scrub(record)
    try:
        time = event_time(record["event"].get("eventTime"), now)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise NotACosNotification(f"record {index} has an invalid eventTime: {error}") from None
    attributes = {
        "id": event_id(scrubbed),
        "source": source,
        "type": EVENT_TYPE,
        "specversion": SPECVERSION,
        "time": time,
        "datacontenttype": DATACONTENTTYPE,
    }
    subject = subject_of(record)
    if subject:
        attributes["subject"] = subject
    attributes.update(extensions_of(record))
    body = _dumps({"Records": [scrubbed]}).encode("utf-8")
    return CosEvent(attributes, body, scrubbed)


def scrub(value: object, in_headers: bool = False) -> object:
    """A copy with every credential-bearing header removed from any `requestHeaders` map."""
    if isinstance(value, dict):
        return {
            name: scrub(item, isinstance(name, str) and name.lower() == "requestheaders")
            for name, item in value.items()
            if not (in_headers and is_sensitive_header(str(name)))
        }
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def is_sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_HEADER_WORDS)


def event_id(scrubbed_record: object) -> str:
    """UUIDv5 (RFC 9562) of the record's canonical JSON; equal to uuid.uuid5(ID_NAMESPACE, …).

    Written out because importing `uuid` costs the cold start several milliseconds."""
    canonical = json.dumps(
        scrubbed_record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    digest = bytearray(
        hashlib.sha1(  # UUIDv5 is defined over SHA-1; not a security use
            ID_NAMESPACE + canonical.encode("utf-8"), usedforsecurity=False
        ).digest()[:16]
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def event_time(value: object, now: datetime) -> str:
    """RFC 3339 UTC for an `eventTime` given as epoch seconds (number or digits) or ISO 8601."""
    if value is None or value == "":
        moment = now
    elif isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    elif isinstance(value, (int, float)):
        moment = datetime.fromtimestamp(value, timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        try:
            moment = datetime.fromtimestamp(float(text), timezone.utc)
        except ValueError:
            moment = _parse_iso(text)
    else:
        raise TypeError(f"unsupported type {type(value).__name__}")
    return rfc3339(moment)


def rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_iso(text: str) -> datetime:
    # Python 3.10's fromisoformat accepts neither "Z" nor fractions other than 3 or 6 digits.
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = re.sub(_ISO_FRACTION, lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # COS writes UTC; a naive time is read as UTC, never as local time
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def subject_of(record: dict) -> str | None:
    """The object key, URL-decoded, without the `/<appid>/<bucket>/` prefix COS puts in front."""
    cos = record["cos"]
    key = _get(cos, "cosObject", "key")
    if not isinstance(key, str) or not key:
        return None
    appid, name = _get(cos, "cosBucket", "appid"), _get(cos, "cosBucket", "name")
    prefix = f"/{appid}/{name}/"
    if appid and name and key.startswith(prefix):
        key = key[len(prefix) :]
    else:
        key = re.sub(_KEY_PREFIX, "", key, count=1)
    return unquote(key) or None


def extensions_of(record: dict) -> dict[str, str]:
    """Filterable extensions (lower-case alphanumeric names of at most 20 characters)."""
    bucket = _get(record["cos"], "cosBucket")
    if not isinstance(bucket, dict):
        bucket = {}
    candidates = {
        "cosbucket": _full_bucket_name(bucket.get("name"), bucket.get("appid")),
        "cosregion": bucket.get("cosRegion") or bucket.get("region"),
        "coseventname": record["event"].get("eventName"),
    }
    return {key: str(value) for key, value in candidates.items() if value not in (None, "")}


def _full_bucket_name(name: object, appid: object) -> object:
    """`<name>-<appid>`, as the COS API and the component spell a bucket (COS sends the parts)."""
    if name and appid and not str(name).endswith(f"-{appid}"):
        return f"{name}-{appid}"
    return name


def _get(mapping: object, *path: str) -> object:
    for name in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(name)
    return mapping


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
