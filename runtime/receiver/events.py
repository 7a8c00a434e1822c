"""Pure parsing of CloudEvents 1.0 HTTP requests: (headers, body) -> validated events with raw data.

Rules and their sources (CloudEvents core 1.0.2, HTTP binding, JSON format):

- binary mode (HTTP binding 3.1.3.2): each `ce-*` header value is first unescaped as RFC 7230
  quoted strings, then percent-decoded exactly once; a result that is not UTF-8 is refused. Raw
  header bytes must be UTF-8 too (aiohttp hands them over decoded with `surrogateescape`, so other
  bytes arrive as lone surrogates). `ce-datacontenttype` is accepted only when it equals
  Content-Type (older SDKs send both). Data is the HTTP body, untouched.
- structured / batch (JSON format 2.2, 3.1): `null` for an optional attribute means unset;
  attribute values must be CloudEvents types (String, Boolean, Integer in 32-bit range; URI,
  Timestamp and Binary travel as strings), so objects, arrays and fractions are refused. The body
  is strict UTF-8 JSON: no `NaN`/`Infinity`, no number that overflows to infinity, no lone
  surrogate, nesting bounded by the interpreter (a RecursionError is a 400, not a 500). `data` is
  serialised as compact JSON (an explicit `"data": null` stays the JSON `null`, distinct from
  absent data), or stored as the string itself when `datacontenttype` is not JSON;
  `data_base64` is decoded.
- every mode (core 1.0.2): String values carry no control characters or surrogates; `time` is
  RFC 3339 as written (`T24:00:00` refused, a leap second `:60` accepted);
  `datacontenttype` is an RFC 2046 media type; `dataschema` an absolute URI; specversion `1.0`
  only (0.3 is refused).

cloudevents 2.2.0 builds the events (attribute names, required attributes), but it invents a
missing id, decodes headers with replacement characters, has no batch support and re-types the
data, so the checks above run here first. `ReceivedEvent.attributes` keeps every value as sent
(the `time` string, not a re-spelled datetime).

Two events of one batch with the same `source` and `id` are the same event (core 1.0.2, `id`):
exact copies are accepted; copies that differ are refused (400, index of the later one), since
a receiver could keep only one of them.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from email.headerregistry import HeaderRegistry
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import unquote_to_bytes, urlsplit

import simplejson
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.v1.event import CloudEvent
from dateutil.parser import isoparse
from simplejson import RawJSON

from .errors import InvalidEvent, UnsupportedMediaType

Mode = Literal["binary", "structured", "batch"]

STRUCTURED_MEDIA_TYPE = "application/cloudevents+json"
BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
STRING_ATTRIBUTES = (*REQUIRED_ATTRIBUTES, "subject", "datacontenttype", "dataschema", "time")
SPECVERSION = "1.0"
# CloudEvents Integer: a signed 32-bit value.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1

# RFC 3339 section 5.6 date-time; hour 24 is not in the grammar, second 60 (a leap second) is.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?P<second>[0-5]\d|60)(?:\.\d+)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
# CloudEvents String (core 1.0.2, type system): no C0/C1 controls, DEL or surrogate code points.
_NOT_STRING = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# RFC 7230 section 3.2.6: quoted-string = DQUOTE *( qdtext / quoted-pair ) DQUOTE.
_QUOTED_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_QUOTED_PAIR = re.compile(r"\\(.)")
# An HTTP field value that survives the trip exactly (RFC 9110 section 5.5, without obs-text):
# visible ASCII, with spaces and tabs only inside.
_HEADER_TEXT = re.compile(r"[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?", re.ASCII)
# RFC 2045 Content-Type grammar, with defects reported instead of a silent text/plain default.
_HEADERS = HeaderRegistry()


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
    """The context attributes as sent: str, int or bool values (`time` is the string sent; the
    SDK event holds it as a datetime, a leap second as :59). Unset (null) attributes are absent."""

    @property
    def id(self) -> str:
        return self.event.get_id()

    @property
    def type(self) -> str:
        return self.event.get_type()


def media_type(content_type: str | None) -> str:
    """The lower-cased media type without parameters ("" when absent)."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def is_json_media_type(content_type: str | None) -> bool:
    """True for `*/json` and `*/*+json`, any case, any parameters (JSON format 3.1.1)."""
    kind = media_type(content_type)
    return kind.endswith(("/json", "+json")) and "/" in kind


def check_media_type(value: str, label: str) -> None:
    """Raise InvalidEvent unless `value` is an RFC 2046 media type (`type/subtype; p=v`) that an
    HTTP header carries exactly: visible ASCII, spaces and tabs only between its parts (RFC 9110
    section 5.5: leading and trailing whitespace is not part of a field value, so a receiver
    drops it, and a signature over the value as sent would no longer match)."""
    if not _HEADER_TEXT.fullmatch(value):
        raise InvalidEvent(
            f"{label} is not usable as a Content-Type header (leading or trailing whitespace, "
            "or characters other than visible ASCII)"
        )
    if _parse_media_type(value) is None:
        raise InvalidEvent(f"{label} is not a media type (type/subtype, RFC 2046)")


@lru_cache(maxsize=256)
def _parse_media_type(value: str) -> tuple[str, frozenset[tuple[str, str]]] | None:
    """(lower-cased type/subtype, parameters with lower-cased names), or None if not valid.

    Cached: the email parser takes tens of microseconds and senders repeat a few content types.
    """
    header = _HEADERS("content-type", value)
    if header.defects or not header.maintype or not header.subtype:
        return None
    return header.content_type, frozenset((k.lower(), v) for k, v in header.params.items())


def load_json(
    body: bytes, label: str = "body", *, numbers: Callable[[str], object] = RawJSON
) -> object:
    """Strict JSON (RFC 8259) as I-JSON (RFC 7493) narrows it: UTF-8, no duplicate member names
    in an object (2.3), numbers within IEEE 754 double range (2.2: `1E400` and `1e-400`, which
    a double would turn into infinity or 0, are refused), bounded nesting; InvalidEvent otherwise.

    Numbers with a fraction or exponent stay the text sent (`simplejson.RawJSON`), so
    `dump_json` writes them back as sent (`12345678901234567.89`, not `1.2345678901234568e+16`;
    `1.50` and `1e1` unchanged); integers are ints. Use `numbers=Decimal` to compare values.
    Lone surrogates (`"\\ud800"`) parse here and are refused where the value is used as text.
    """
    if body.startswith(b"\xef\xbb\xbf"):
        # RFC 8259 section 8.1: no byte order mark (simplejson would skip it silently).
        raise InvalidEvent(f"{label} is not valid JSON (it starts with a byte order mark)")
    try:
        return simplejson.loads(
            body.decode("utf-8"),
            parse_constant=_refuse_constant,
            parse_float=lambda text: _exact_number(text, numbers),
            object_pairs_hook=_unique_members,
        )
    except _NonFinite:
        raise InvalidEvent(
            f"{label} holds a non-finite number (NaN, Infinity, or beyond what a double holds)"
        ) from None
    except _DuplicateMember as error:
        raise InvalidEvent(
            f"{label} repeats the member name {str(error)[:64]!r} in one object (I-JSON, "
            "RFC 7493 section 2.3)"
        ) from None
    except UnicodeDecodeError:
        raise InvalidEvent(f"{label} is not valid UTF-8") from None
    except RecursionError:
        raise InvalidEvent(f"{label} is nested too deeply") from None
    except ValueError:
        # JSONDecodeError, or an integer over Python's 4300-digit conversion limit.
        raise InvalidEvent(f"{label} is not valid JSON") from None


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFinite(name)


class _DuplicateMember(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, object]]) -> dict[str, object]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _DuplicateMember(name.encode("ascii", "backslashreplace").decode())
            seen.add(name)
    return document


def _exact_number(text: str, numbers: Callable[[str], object]) -> object:
    value = float(text)
    if not math.isfinite(value):
        raise _NonFinite(text)
    if value == 0.0 and any(digit in "123456789" for digit in text.lower().split("e")[0]):
        raise _NonFinite(text)  # underflow: a double would hold 0
    return numbers(text)


def dump_json(value: object) -> bytes:
    """Compact UTF-8 JSON of what `load_json` returned (numbers as they were sent). Raises
    UnicodeEncodeError on a lone surrogate, RecursionError when nested too deeply."""
    return simplejson.dumps(
        value, separators=(",", ":"), ensure_ascii=False, use_decimal=True, allow_nan=False
    ).encode("utf-8")


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
    _check_header_text(header_list)
    mode, _ = detect_mode(header_list)
    if mode == "binary":
        return mode, [parse_binary(header_list, body)]
    document = load_json(body)
    if mode == "structured":
        return mode, [parse_structured(document)]
    if not isinstance(document, list):
        raise InvalidEvent("a batch must be a JSON array of CloudEvents")
    events = [parse_structured(item, index=i, mode="batch") for i, item in enumerate(document)]
    _check_duplicates(events)
    return mode, events


def _check_header_text(headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        lower = name.lower()
        if not (lower.startswith("ce-") or lower == "content-type"):
            continue
        try:
            name.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError:
            label = "a ce- header name" if not name.isascii() else f"header {lower!r}"
            raise InvalidEvent(f"{label} holds bytes that are not UTF-8") from None


def decode_header_value(value: str, label: str) -> str:
    """HTTP binding 3.1.3.2: unescape quoted strings, then one round of strict percent-decoding."""
    if '"' in _QUOTED_STRING.sub("", value):
        raise InvalidEvent(f"{label} has an unterminated double-quoted string")
    unquoted = _QUOTED_STRING.sub(lambda m: _QUOTED_PAIR.sub(r"\1", m.group(1)), value)
    try:
        return unquote_to_bytes(unquoted).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidEvent(f"{label} is not UTF-8 once percent-decoded") from None


def parse_binary(headers: Iterable[tuple[str, str]], body: bytes) -> ReceivedEvent:
    """Binary mode: attributes from `ce-*` headers, data = the body bytes as received."""
    attributes: dict[str, Any] = {}
    content_type = None
    for name, value in headers:
        lower = name.lower()
        if lower.startswith("ce-"):
            attribute = lower[3:]
            if attribute in attributes:
                raise InvalidEvent(f"header {name!r} appears more than once")
            attributes[attribute] = decode_header_value(value, f"header {lower}")
        elif lower == "content-type" and content_type is None:
            content_type = value
    declared = attributes.pop("datacontenttype", None)
    if declared is not None and (
        content_type is None or not _same_media_type(declared, content_type)
    ):
        raise InvalidEvent(
            "binary mode takes datacontenttype from Content-Type; a ce-datacontenttype header "
            "must equal it"
        )
    if content_type:
        attributes["datacontenttype"] = content_type
    event = _build(attributes, body, "header ce-")
    return ReceivedEvent(
        event=event,
        data=body,
        mode="binary",
        content_type=content_type or None,
        attributes=attributes,
    )


def _same_media_type(a: str, b: str) -> bool:
    first = _parse_media_type(a)
    return first is not None and first == _parse_media_type(b)


def parse_structured(
    document: object, *, index: int | None = None, mode: Mode = "structured"
) -> ReceivedEvent:
    """One event in the JSON event format (a structured body, or one element of a batch)."""
    where = "" if index is None else f"event {index}: "
    try:
        return _parse_structured(document, where, mode)
    except InvalidEvent as error:
        error.index = index
        if index is not None and not error.message.startswith(where):
            error.message = where + error.message
            error.args = (error.message,)
        raise


def _parse_structured(document: object, where: str, mode: Mode) -> ReceivedEvent:
    if not isinstance(document, dict):
        raise InvalidEvent(f"{where}a CloudEvent must be a JSON object")
    # JSON format 2.2: null is unset. `data` is not an attribute: null data is the JSON null
    # (3.1), unless `data_base64` carries the data (serialisers that write every member as null).
    attributes = {k: v for k, v in document.items() if v is not None and k != "data"}
    base64_value = attributes.pop("data_base64", None)
    has_data = "data" in document and (base64_value is None or document["data"] is not None)
    if has_data and base64_value is not None:
        raise InvalidEvent(f"{where}'data' and 'data_base64' are mutually exclusive")
    declared_type = attributes.get("datacontenttype")
    content_type = declared_type
    if base64_value is not None:
        data = _decode_base64(base64_value, where)
    elif has_data:
        data = _serialise_data(document["data"], declared_type, where)
        if content_type is None:
            content_type = "application/json"
    else:
        data = b""
    # parse_structured prefixes `where` to every message; the label must not repeat it.
    event = _build(attributes, data, "attribute ")
    return ReceivedEvent(
        event=event, data=data, mode=mode, content_type=content_type, attributes=attributes
    )


def _build(attributes: dict[str, Any], data: bytes, label: str) -> CloudEvent:
    """Check every attribute value against the CloudEvents type system, then let the SDK build."""
    for name in REQUIRED_ATTRIBUTES:
        if name not in attributes:
            raise InvalidEvent(f"missing required {label}{name}")
    for name, value in attributes.items():
        _check_value(name, value, label)
    if attributes["specversion"] != SPECVERSION:
        raise InvalidEvent(f"unsupported specversion: only {SPECVERSION!r} is accepted")
    sdk_attributes = dict(attributes)
    if "time" in attributes:
        when = _parse_time(attributes["time"], f"{label}time")
        if when is None:
            # Valid RFC 3339 that a Python datetime cannot hold (year 0000): the SDK event goes
            # without it; `attributes` (what is stored and forwarded) keeps the string as sent.
            del sdk_attributes["time"]
        else:
            sdk_attributes["time"] = when
    if "datacontenttype" in attributes:
        check_media_type(attributes["datacontenttype"], f"{label}datacontenttype")
    if "dataschema" in attributes and not urlsplit(attributes["dataschema"]).scheme:
        raise InvalidEvent(f"{label}dataschema must be an absolute URI")
    try:
        return CloudEvent(sdk_attributes, data)
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise InvalidEvent(_sdk_message(error)) from None


def _check_value(name: str, value: object, label: str) -> None:
    if isinstance(value, str):
        if not value and name in STRING_ATTRIBUTES:
            raise InvalidEvent(f"{label}{name} must be a non-empty string")
        if _NOT_STRING.search(value):
            raise InvalidEvent(
                f"{label}{name} holds control characters or lone surrogates (not a String)"
            )
        return
    if name in STRING_ATTRIBUTES:
        raise InvalidEvent(f"{label}{name} must be a non-empty string")
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not INT32_MIN <= value <= INT32_MAX:
            raise InvalidEvent(f"{label}{name} is outside the 32-bit Integer range")
        return
    raise InvalidEvent(
        f"{label}{name} must be a string, a boolean or an integer (CloudEvents type system), "
        f"not {_json_type(value)}"
    )


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (float, Decimal, RawJSON)):
        return "a number with a fraction or exponent"
    return type(value).__name__


def _parse_time(value: str, label: str) -> datetime | None:
    """RFC 3339 as written; the datetime for the SDK (a leap second becomes :59), or None for a
    valid date in year 0000 (RFC 3339 allows 0000-9999; Python's datetime starts at year 1)."""
    match = _RFC3339.fullmatch(value)
    if not match:
        raise InvalidEvent(f"{label} is not an RFC 3339 timestamp")
    if match["second"] == "60":
        start, end = match.span("second")
        value = value[:start] + "59" + value[end:]
    if value.startswith("0000-"):
        # Check the rest on a year that has the same calendar rules (0 is a leap year, as 2000).
        _parse_time("2000" + value[4:], label)
        return None
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        raise InvalidEvent(f"{label} is not a valid date and time") from None


def _decode_base64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidEvent(f"{where}'data_base64' must be a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidEvent(f"{where}'data_base64' is not valid base64") from None


def _serialise_data(value: object, content_type: str | None, where: str) -> bytes:
    try:
        if isinstance(value, str) and content_type and not is_json_media_type(content_type):
            return value.encode("utf-8")
        return dump_json(value)
    except UnicodeEncodeError:
        raise InvalidEvent(f"{where}'data' holds a lone surrogate (not UTF-8 text)") from None
    except RecursionError:
        raise InvalidEvent(f"{where}'data' is nested too deeply") from None


def _check_duplicates(events: list[ReceivedEvent]) -> None:
    """Copies of one event (same source and id) must be the same event: equal attributes and
    equal data, JSON data compared as JSON values (member order and number spelling aside).
    Each later copy is replaced by the first, so every copy is stored as the same bytes."""
    seen: dict[tuple[str, str], ReceivedEvent] = {}
    for index, received in enumerate(events):
        key = (received.event.get_source(), received.id)
        first = seen.setdefault(key, received)
        if first is received:
            continue
        if first.attributes == received.attributes and _same_data(first, received):
            events[index] = first
        else:
            raise InvalidEvent(
                f"event {index}: same source and id as an earlier event of the batch, but a "
                "different event (source + id must identify one event)",
                index=index,
            )


def _same_data(first: ReceivedEvent, second: ReceivedEvent) -> bool:
    if first.data == second.data:
        return True
    if first.content_type != second.content_type or not is_json_media_type(first.content_type):
        return False
    try:
        return load_json(first.data, numbers=Decimal) == load_json(second.data, numbers=Decimal)
    except InvalidEvent:
        return False


def _sdk_message(error: Exception) -> str:
    # The SDK's messages name attributes and rules, never values; keep them one line and ASCII
    # (an attribute name may hold a lone surrogate, which no log stream can encode).
    text = " ".join(str(error).split()) or type(error).__name__
    return text.encode("ascii", "backslashreplace").decode("ascii")


def parse_rfc3339(value: str) -> datetime:
    """RFC 3339 section 5.6 date-time as written (the grammar `_parse_time` checks events with:
    lowercase `t`/`z` accepted, a leap second `:60` read as :59) -> aware datetime. For other
    callers (the OSS target's STS `Expiration`): raises ValueError for other ISO 8601 forms
    (week dates, basic format, a bare date) and for dates a datetime cannot hold; the value is
    never quoted."""
    match = _RFC3339.fullmatch(value)
    if not match:
        raise ValueError("not an RFC 3339 date-time")
    if match["second"] == "60":
        start, end = match.span("second")
        value = value[:start] + "59" + value[end:]
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        raise ValueError("not a valid date and time") from None
