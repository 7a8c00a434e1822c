"""COS notification -> CloudEvents: the pure core of the Tencent COS source (no I/O, no clock).

Standard library only: this file ships in the SCF zip next to `index.py`.

Event ids are UUIDv5 over the canonical JSON of the *scrubbed* record, because
- SCF's asynchronous retry re-sends the identical notification, so the same record gives the same id
  and receivers (the OSS target, any deduplicating broker) can drop the duplicate;
- the id depends only on what the receiver gets in `data`, so it can be recomputed from the event;
- no credential (the uploader's `Authorization`, a presigned URL's `q-signature`) feeds any value we
  derive or send.
Two records that are identical after scrubbing describe the same COS event (real records differ at
least in `x-cos-request-id`), so they get the same id and are sent once.

A record this source cannot turn into an event (no `cos`/`event` object, an unreadable `eventTime`,
text UTF-8 cannot encode) is *rejected* on its own: the other records of the notification still
become events. `convert` reports both.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from datetime import datetime, timezone
from urllib.parse import unquote, unquote_to_bytes

EVENT_TYPE = "tencent-cloud-cos-event"
SPECVERSION = "1.0"
DATACONTENTTYPE = "application/json"
# uuid5(NAMESPACE_URL, "https://cloudevents-connectors/tencent-cos-source/record"); fixed forever,
# changing it would change every id.
ID_NAMESPACE = uuid.UUID("829a3ddb-be37-5f2d-b194-c88a94cb6852")

# An `eventTime` number at or above this is milliseconds: 1e11 seconds would be the year 5138,
# 1e11 milliseconds is 1973.
MILLISECONDS_FROM = 1e11
_EPOCH_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # ASCII only: float() also reads "١٢" and "1_0"
_ISO_FRACTION = re.compile(r"\.([0-9]+)")

# --- Credential scrubbing (see `scrub`) ----------------------------------------------------------
# Request headers of the uploader that describe the object and carry no credential: the only ones
# kept (allow-list; compared in lower case). `x-cos-meta-*` (user metadata) is kept too unless its
# name looks like a credential.
KEPT_REQUEST_HEADERS = frozenset(
    {
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-language",
        "content-length",
        "content-md5",
        "content-type",
        "date",
        "expires",
        "host",
        "user-agent",
        "x-cos-server-side-encryption",
        "x-cos-storage-class",
    }
)
USER_METADATA_PREFIX = "x-cos-meta-"
# What `requestParameters` (the uploader's request) keeps; everything else in it is dropped.
KEPT_REQUEST_PARAMETERS = frozenset({"requestSourceIP", "requestHeaders"})
# Query parameters kept in a URL anywhere in the record (lower case); presigned-URL parameters
# (`q-sign-algorithm`, `q-ak`, `q-key-time`, `q-signature`, `x-cos-security-token`, …) never are.
KEPT_URL_PARAMETERS = frozenset({"versionid"})
# A name (header, metadata, JSON key) whose words include one of these carries a credential.
CREDENTIAL_WORDS = frozenset(
    {
        "ak",
        "apikey",
        "auth",
        "authentication",
        "authorization",
        "bearer",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "passphrase",
        "passwd",
        "password",
        "pwd",
        "secret",
        "secrets",
        "session",
        "sig",
        "sign",
        "signature",
        "sk",
        "token",
        "tokens",
    }
)
# ... or a word that starts or ends like this ("sessionid", "accesstoken", "x-amz-credential")
_CREDENTIAL_STEMS = ("authoriz", "authentic", "credential", "password", "secret", "session")
_CREDENTIAL_ENDINGS = ("token", "secret", "password", "signature", "cookie", "apikey")
# ... or "key" right after one of these ("X-Api-Key", "AccessKeyId", "...-customer-key" of SSE-C).
_KEY_QUALIFIERS = frozenset(
    {"access", "api", "customer", "encryption", "master", "private", "secret", "session", "signing"}
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


class NotACosNotification(ValueError):
    """The SCF event is not a COS notification this source can turn into CloudEvents."""


class RejectedRecord:
    """A record that cannot become an event: its position in `Records` and why (no values of it)."""

    __slots__ = ("index", "reason")

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason

    def __str__(self) -> str:
        return f"record {self.index}: {self.reason}"

    def __repr__(self) -> str:
        return f"RejectedRecord({self.index}, {self.reason!r})"


class CosEvent:
    """One CloudEvent: attributes (wire strings), `data` (the JSON value) and `body`, the UTF-8
    bytes of `data` as sent in binary mode."""

    __slots__ = ("attributes", "body", "data")

    def __init__(self, attributes: dict[str, str], data: dict, body: bytes) -> None:
        self.attributes = attributes
        self.data = data  # {"Records": [scrubbed record]}; also logged in DEBUG_MODE
        self.body = body

    @property
    def id(self) -> str:
        return self.attributes["id"]

    @property
    def subject(self) -> str | None:
        return self.attributes.get("subject")

    @property
    def record(self) -> dict:
        return self.data["Records"][0]

    def structured(self) -> bytes:
        """The whole event in the CloudEvents JSON format (structured mode), UTF-8.

        `data` is encoded exactly as `body` is, so a receiver that re-encodes it with
        `json.dumps(data, separators=(",", ":"), ensure_ascii=False)` gets `body` byte for byte.
        """
        document = {**self.attributes, "data": self.data}
        return dumps(document).encode("utf-8")


class Conversion:
    """What `convert` made of one notification."""

    __slots__ = ("duplicates", "events", "rejected", "total")

    def __init__(
        self, events: list[CosEvent], duplicates: int, rejected: list[RejectedRecord], total: int
    ) -> None:
        self.events = events  # in record order, duplicates dropped
        self.duplicates = duplicates  # records identical (after scrubbing) to an earlier one
        self.rejected = rejected
        self.total = total  # records in the notification


def convert(notification: object, source: str, now: datetime) -> Conversion:
    """Every record of a notification as an event, or as a rejection naming the record and why.

    Raises NotACosNotification only when there is no list of records at all. `now` is used only
    for a record without `eventTime`.
    """
    records = records_of(notification)
    events: list[CosEvent] = []
    rejected: list[RejectedRecord] = []
    seen: set[str] = set()
    duplicates = 0
    for index, record in enumerate(records):
        try:
            event = event_from_record(record, source, now)
        except NotACosNotification as error:
            rejected.append(RejectedRecord(index, str(error)))
            continue
        if event.id in seen:
            duplicates += 1
        else:
            seen.add(event.id)
            events.append(event)
    return Conversion(events, duplicates, rejected, len(records))


def events_from_notification(
    notification: object, source: str, now: datetime
) -> tuple[list[CosEvent], int]:
    """(events, duplicates dropped) of a notification whose every record is valid; otherwise
    NotACosNotification naming the first rejected record. For tools; the handler uses `convert`."""
    conversion = convert(notification, source, now)
    if conversion.rejected:
        raise NotACosNotification(str(conversion.rejected[0]))
    return conversion.events, conversion.duplicates


def records_of(notification: object) -> list:
    if not isinstance(notification, dict) or "Records" not in notification:
        raise NotACosNotification("not a COS notification: no 'Records'")
    records = notification["Records"]
    if not isinstance(records, list) or not records:
        raise NotACosNotification("not a COS notification: 'Records' must be a non-empty list")
    return records


def event_from_record(record: object, source: str, now: datetime) -> CosEvent:
    """The event of one record; NotACosNotification (saying what, never quoting a value) if the
    record cannot be one."""
    if not isinstance(record, dict):
        raise NotACosNotification("not an object")
    for part in ("cos", "event"):
        if not isinstance(record.get(part), dict):
            raise NotACosNotification(f"no '{part}' object")
    try:
        time = event_time(record["event"].get("eventTime"), now)
    except (TypeError, ValueError, OverflowError, OSError) as error:
        raise NotACosNotification(f"invalid eventTime: {error}") from None
    scrubbed = scrub(record)
    data = {"Records": [scrubbed]}
    problem = unencodable(scrubbed)
    if problem:
        raise NotACosNotification(problem)
    attributes = {  # in the order of the CloudEvents JSON format; extensions last
        "specversion": SPECVERSION,
        "id": event_id(scrubbed),
        "source": source,
        "type": EVENT_TYPE,
        "time": time,
    }
    subject = subject_of(record)
    if subject:
        attributes["subject"] = subject
    attributes["datacontenttype"] = DATACONTENTTYPE
    attributes.update(extensions_of(record))
    for name, value in attributes.items():  # `source` comes from the settings or the context
        problem = _bad_text(value, f"the {name} attribute")
        if problem:
            raise NotACosNotification(problem)
    return CosEvent(attributes, data, dumps(data).encode("utf-8"))


# --- Scrubbing -----------------------------------------------------------------------------------


def scrub(record: object) -> object:
    """A copy of the record with every credential removed; the input is not changed.

    What is removed (see the README, "Security"):
    - under any object: a member whose name looks like a credential (`looks_like_credential`);
    - `requestParameters`: everything but `requestSourceIP` and `requestHeaders` (allow-list);
    - `requestHeaders`: every header but `KEPT_REQUEST_HEADERS` and non-credential `x-cos-meta-*`
      (allow-list: a header we do not know may carry a token, a signed `Referer` for one);
    - any string that is an http(s) URL (`cosObject.url`): user info, fragment, and every query
      parameter but `KEPT_URL_PARAMETERS` (presigned URLs carry `q-signature`, `q-ak`,
      `x-cos-security-token`).
    Everything else (`cosObject.key`, `size`, the rest of `cosObject.meta`, the event fields) is
    kept as COS sent it.
    """
    return _scrub(record, None)


def _scrub(value: object, kept_names) -> object:
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if isinstance(name, str):
                if looks_like_credential(name) or (kept_names and not kept_names(name)):
                    continue
                inner = _NESTED_ALLOW_LISTS.get(name)
                if inner is not None and not isinstance(item, dict):
                    continue  # an allow-list cannot be applied to anything but an object
                out[name] = _scrub(item, inner)
            else:  # not from JSON; left for `unencodable` to report
                out[name] = _scrub(item, None)
        return out
    if isinstance(value, list):
        return [_scrub(item, None) for item in value]
    if isinstance(value, str) and value[:8].lower().startswith(("http://", "https://")):
        return scrub_url(value)
    return value


def _kept_request_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in KEPT_REQUEST_HEADERS or lowered.startswith(USER_METADATA_PREFIX)


_NESTED_ALLOW_LISTS = {
    "requestParameters": KEPT_REQUEST_PARAMETERS.__contains__,
    "requestHeaders": _kept_request_header,
}


def looks_like_credential(name: str) -> bool:
    """True for a name whose words say it carries a credential: `Authorization`, `X-Api-Key`,
    `x-cos-security-token`, `q-signature`, `accessToken`, `Set-Cookie`, …

    Words are split at separators and camel case; `x-cos-meta-author` and `mykey` are not
    credentials, `q-ak` (the SecretId of a COS signature) is.
    """
    words = [word.lower() for word in _WORD.findall(name)]
    for position, word in enumerate(words):
        if (
            word in CREDENTIAL_WORDS
            or word.startswith(_CREDENTIAL_STEMS)
            or word.endswith(_CREDENTIAL_ENDINGS)
        ):
            return True
        if word in ("key", "keys") and position and words[position - 1] in _KEY_QUALIFIERS:
            return True
        if any(word.startswith(qualifier + "key") for qualifier in _KEY_QUALIFIERS):
            return True  # written as one word: "apikey", "accesskeyid"
    return False


def scrub_url(url: str) -> str:
    """`url` without user info, fragment, or query parameters other than `KEPT_URL_PARAMETERS`.

    The kept parts are returned as written (not re-encoded), so a URL without any of these is
    unchanged.
    """
    url = url.split("#", 1)[0]
    base, _, query = url.partition("?")
    scheme, _, rest = base.partition("://")
    authority, slash, path = rest.partition("/")
    authority = authority.rpartition("@")[2]
    kept = [
        pair
        for pair in query.split("&")
        if pair and unquote(pair.split("=", 1)[0]).lower() in KEPT_URL_PARAMETERS
    ]
    return f"{scheme}://{authority}{slash}{path}" + ("?" + "&".join(kept) if kept else "")


# --- Encoding ------------------------------------------------------------------------------------


def dumps(value: object) -> str:
    """Compact JSON with non-ASCII text as is: the encoding of every body this source sends."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def unencodable(value: object, path: str = "") -> str | None:
    """Why `value` cannot be sent as UTF-8 JSON, naming where (never the text itself), or None.

    JSON from SCF can hold what UTF-8 JSON cannot: lone surrogates (`"\\ud800"` escapes) and
    `NaN`/`Infinity` (Python's json accepts them); a direct call can pass any Python value.
    """
    try:
        return _unencodable(value, path)
    except RecursionError:
        return "the record is nested too deeply"


def _unencodable(value: object, path: str) -> str | None:
    where = path or "the record"
    if isinstance(value, str):
        return _bad_text(value, where)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if value.bit_length() > 10_000:  # about 3,000 digits: near int()'s limit on printing
            try:
                str(value)
            except ValueError:
                return f"{where} holds an integer too long to write as JSON"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} holds {value}, which JSON cannot carry"
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                return f"{where} has a {type(name).__name__} member name, which JSON cannot carry"
            problem = _bad_text(name, f"a member name in {where}")
            if problem:
                return problem
            problem = _unencodable(item, f"{path}.{name}" if path else name)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for position, item in enumerate(value):
            problem = _unencodable(item, f"{path}[{position}]")
            if problem:
                return problem
        return None
    return f"{where} holds a {type(value).__name__}, which JSON cannot carry"


def _bad_text(text: str, where: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(text[error.start])
        return (
            f"{where} holds text UTF-8 cannot encode: a lone surrogate U+{code:04X} "
            f"at character {error.start}"
        )
    return None


def event_id(scrubbed_record: object) -> str:
    """UUIDv5 (RFC 9562) in `ID_NAMESPACE` of the record's canonical JSON (sorted keys, compact)."""
    canonical = json.dumps(
        scrubbed_record, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return str(uuid.uuid5(ID_NAMESPACE, canonical))


# --- Attributes ----------------------------------------------------------------------------------


def event_time(value: object, now: datetime) -> str:
    """RFC 3339 UTC for an `eventTime`: epoch seconds, or epoch milliseconds when the number is at
    least `MILLISECONDS_FROM` (a number or a string of ASCII digits), or ISO 8601.

    Raises TypeError or ValueError, whose message never quotes the value, for anything else.
    """
    if value is None or value == "":
        moment = now
    elif isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    elif isinstance(value, (int, float)):
        moment = _from_epoch(value)
    elif isinstance(value, str):
        text = value.strip()
        if _EPOCH_NUMBER.fullmatch(text):
            moment = _from_epoch(float(text) if len(text) < 40 else math.inf)
        else:
            try:
                moment = _parse_iso(text)
            except ValueError:  # its message would quote the text
                raise ValueError("neither epoch seconds, milliseconds nor ISO 8601") from None
    else:
        raise TypeError(f"unsupported type {type(value).__name__}")
    return rfc3339(moment)


def _from_epoch(number: float) -> datetime:
    try:
        if not math.isfinite(number):
            raise ValueError("not finite")
        if number >= MILLISECONDS_FROM:
            number /= 1000
        return datetime.fromtimestamp(number, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError("out of range") from None


def rfc3339(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_iso(text: str) -> datetime:
    if not text.isascii():  # fromisoformat reads some non-ASCII digits on some versions
        raise ValueError("not an ISO 8601 time")
    # Python 3.10's fromisoformat accepts neither "Z" nor fractions other than 3 or 6 digits.
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    text = _ISO_FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # COS writes UTC; a naive time is read as UTC, never as local time
        moment = moment.replace(tzinfo=timezone.utc)
    return moment


def subject_of(record: dict) -> str | None:
    """The object key as the object is named: `cosObject.key` without the `/<appid>/<bucket>/`
    prefix, percent-decoded only if COS sent it encoded.

    Public samples disagree on whether COS percent-encodes `cosObject.key`; `cosObject.url` always
    is. So: a key equal to the URL's decoded path is already raw; a key that decodes to it was
    encoded. Without a URL to compare with, a key is decoded when it holds `%XX` escapes and
    nothing else that a percent-encoded key could not (`%` alone, a space) and the escapes decode
    as UTF-8; otherwise it is taken as raw. (`data` always keeps the key exactly as COS sent it.)
    """
    cos = record["cos"]
    key = _get(cos, "cosObject", "key")
    if not isinstance(key, str) or not key:
        return None
    appid, name = _get(cos, "cosBucket", "appid"), _get(cos, "cosBucket", "name")
    prefix = f"/{appid}/{name}/"
    if appid and name and key.startswith(prefix):
        key = key[len(prefix) :]
    else:
        key = re.sub(r"^/[0-9]+/[^/]+/", "", key, count=1)
    url_path = _url_path(_get(cos, "cosObject", "url"))
    if url_path is not None:
        decoded_url_path = unquote(url_path)
        if key == decoded_url_path:
            return key or None
        if unquote(key) == decoded_url_path:
            return decoded_url_path or None
    return _decode_if_encoded(key) or None


def _url_path(url: object) -> str | None:
    """The path of an object URL after the host, without its leading `/`, query or fragment."""
    if not isinstance(url, str) or "://" not in url:
        return None
    rest = url.split("#", 1)[0].split("?", 1)[0].split("://", 1)[1]
    _, slash, path = rest.partition("/")
    return path if slash else None


def _decode_if_encoded(key: str) -> str:
    if "%" not in key or " " in key or re.search(r"%(?![0-9A-Fa-f]{2})", key):
        return key
    try:
        return unquote_to_bytes(key).decode("utf-8")
    except UnicodeDecodeError:
        return key


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
