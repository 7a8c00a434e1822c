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
text UTF-8 cannot encode, nesting deeper than `MAX_DEPTH`) is *rejected* on its own: the other
records of the notification still become events. `convert` reports both. Every walk over a record
is bounded by `MAX_DEPTH`, so no record can exhaust the interpreter's recursion limit.
"""

from __future__ import annotations

import functools
import json
import math
import re
import uuid
from datetime import datetime, timedelta, timezone
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
# RFC 3339 `date-time` (section 5.6; `T`/`Z` in either case, a space for `T` as 5.6 allows), the
# zone optional (COS writes UTC). Parsed here, not by datetime.fromisoformat, whose accepted forms
# grew in Python 3.11 ("20181219T074930Z", "2018-W51", "07:49:30,5"): the same text must give the
# same answer on SCF's Python 3.10 and on any later runtime.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)

# Objects and arrays nested deeper than this (the record itself is level 1; COS records use 4)
# make the record rejected: every walk over a record stops here instead of recursing further.
MAX_DEPTH = 32

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
# What `requestParameters` (the uploader's request) keeps; everything else in it is dropped. Member
# names are compared in `normalized_name` form: `RequestHeaders`, `request_headers` and
# `requestheaders` are all `requestHeaders`, so an allow-list cannot be side-stepped by spelling.
KEPT_REQUEST_PARAMETERS = frozenset({"requestsourceip", "requestheaders"})
# Query parameters kept in any string of the record (lower case); presigned-URL parameters
# (`q-sign-algorithm`, `q-ak`, `q-key-time`, `q-signature`, `x-cos-security-token`, …) never are.
KEPT_URL_PARAMETERS = frozenset({"versionid"})
# ... and only with a value shaped like a COS version id (base64 text once percent-decoded), so
# nothing can ride along inside it ("versionId=1,q-signature=…").
_KEPT_PARAMETER_VALUE = re.compile(r"[A-Za-z0-9._~+/-]{1,256}={0,2}")
# A name (header, metadata, JSON key) whose words include one of these, or one of them with a
# plural "s" ("Signatures", "sigs", "tokens"), carries a credential.
CREDENTIAL_WORDS = frozenset(
    {
        "ak",
        "apikey",
        "auth",
        "authentication",
        "authorization",
        "bearer",
        "cookie",
        "credential",
        "hmac",
        "jsessionid",
        "jwt",
        "oauth",
        "otp",
        "passcode",
        "passphrase",
        "passwd",
        "password",
        "presigned",
        "phpsessid",
        "pwd",
        "secret",
        "session",
        "sig",
        "sign",
        "signature",
        "signed",
        "sk",
        "ticket",
        "token",
        "totp",
    }
)
# ... or a word that starts or ends like this ("sessionid", "accesstoken", "x-amz-credential",
# "presignedurl")
_CREDENTIAL_STEMS = (
    "authoriz",
    "authentic",
    "credential",
    "password",
    "presign",
    "secret",
    "session",
)
_CREDENTIAL_ENDINGS = ("token", "secret", "password", "signature", "cookie", "apikey", "ticket")
# ... or "key" right after one of these ("X-Api-Key", "AccessKeyId", "...-customer-key" of SSE-C).
_KEY_QUALIFIERS = frozenset(
    {"access", "api", "customer", "encryption", "master", "private", "secret", "session", "signing"}
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Text scrubbing (see `scrub_text`). A token is a run of text without white space, quotes or
# angle brackets: the characters that end a URL written inside text.
_TOKEN_DELIMITERS = re.compile(r"""([\s<>"'`]+)""")
# Where an authority begins: after `scheme:` and slashes or backslashes (browsers read
# `https:/\\host` as `https://host`), or after a leading `//` (protocol-relative).
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[/\\]+|[/\\]{2}")
# Query separators: `&`, and `;`, which many servers also split on (the old W3C recommendation).
_PAIR_SEPARATOR = re.compile(r"([&;])")
_PAIR_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
# Rounds of percent-decoding under which a credential is still found (`%3Fq-signature%3D…`).
PERCENT_DECODING_ROUNDS = 4


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
    - under any object: a member whose name looks like a credential (`looks_like_credential`) or
      holds URL credentials itself;
    - `requestParameters`: everything but `requestSourceIP` (a string) and `requestHeaders` (an
      object) (allow-list);
    - `requestHeaders`: every header but `KEPT_REQUEST_HEADERS` and non-credential `x-cos-meta-*`,
      and every header whose value is not a string (allow-list: a header we do not know may carry
      a token, a signed `Referer` for one);
    - in every string but `cosObject.key` (the object's name, kept as COS sent it): what
      `scrub_text` removes (URL user info, fragments, query parameters, credential pairs).
    Both allow-lists match member names in any case and spelling (`normalized_name`). Everything
    else (`size`, the rest of `cosObject.meta`, the event fields) is kept as COS sent it.

    Raises NotACosNotification for objects or arrays nested deeper than `MAX_DEPTH`.
    """
    return _scrub(record, None, 1, False)


def _scrub(value: object, allow, depth: int, in_cos_object: bool) -> object:
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        raise NotACosNotification(f"nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, dict):
        out = {}
        for name, item in value.items():
            if not isinstance(name, str):  # not from JSON; left for `unencodable` to report
                out[name] = _scrub(item, None, depth + 1, False)
                continue
            dropped, normalized = (_name_facts if len(name) <= 256 else _facts_of)(name)
            if dropped:
                continue
            if allow is not None and not allow(normalized, name, item):
                continue
            if in_cos_object and normalized == "key" and isinstance(item, str):
                out[name] = item  # the object's name: subject and receivers need it unchanged
                continue
            inner = _NESTED_ALLOW_LISTS.get(normalized)
            if inner is not None and not isinstance(item, dict):
                continue  # an allow-list cannot be applied to anything but an object
            out[name] = _scrub(item, inner, depth + 1, normalized == "cosobject")
        return out
    if isinstance(value, list):
        return [_scrub(item, None, depth + 1, False) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def _facts_of(name: str) -> tuple[bool, str]:
    """(whether a member of this name is dropped, its normalized form)."""
    return looks_like_credential(name) or scrub_text(name) != name, normalized_name(name)


# Member names repeat from record to record (the same headers, the same metadata): what a name
# implies is worked out once per container, for a bounded number of short names (at most about
# 4096 x 256 characters held).
_name_facts = functools.lru_cache(maxsize=4096)(_facts_of)


def normalized_name(name: str) -> str:
    """`name` in lower case without separators: how allow-listed member names are compared."""
    return "".join(character for character in name.lower() if character.isalnum())


def _kept_request_parameter(normalized: str, name: str, value: object) -> bool:
    if normalized == "requestsourceip":
        return isinstance(value, str)
    return normalized in KEPT_REQUEST_PARAMETERS  # requestHeaders: must be an object (see _scrub)


def _kept_request_header(normalized: str, name: str, value: object) -> bool:
    lowered = name.lower()
    return isinstance(value, str) and (
        lowered in KEPT_REQUEST_HEADERS or lowered.startswith(USER_METADATA_PREFIX)
    )


_NESTED_ALLOW_LISTS = {
    "requestparameters": _kept_request_parameter,
    "requestheaders": _kept_request_header,
}


def looks_like_credential(name: str) -> bool:
    """True for a name whose words say it carries a credential: `Authorization`, `X-Api-Key`,
    `x-cos-security-token`, `q-signature`, `accessToken`, `Set-Cookie`, `presigned_url`, …

    Words are split at separators and camel case, and read in the singular as well ("Signatures",
    "sigs"); `x-cos-meta-author` and `mykey` are not credentials, `q-ak` (the SecretId of a COS
    signature) is.
    """
    words = [word.lower() for word in _WORD.findall(name)]
    for position, word in enumerate(words):
        for form in {word, _singular(word)}:
            if (
                form in CREDENTIAL_WORDS
                or form.startswith(_CREDENTIAL_STEMS)
                or form.endswith(_CREDENTIAL_ENDINGS)
            ):
                return True
            if form == "key" and position and _singular(words[position - 1]) in _KEY_QUALIFIERS:
                return True
            if any(form.startswith(qualifier + "key") for qualifier in _KEY_QUALIFIERS):
                return True  # written as one word: "apikey", "accesskeyid"
    return False


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 2 and word.endswith("s") and not word.endswith("ss") else word


def scrub_text(text: str) -> str:
    """`text` without the credentials a URL or a query can carry, wherever in the text they are.

    The text is read as tokens (runs without white space, quotes or `<>`); in each token:
    - user info: from where an authority starts (`scheme:` and slashes or backslashes, or a
      leading `//`) to the token's last `@`, or without an authority, everything up to the last
      `@` when a `:` comes before it (`user:password@host`); an e-mail address is kept;
    - a fragment (`#…`) when the token has an authority or a query, or the fragment holds `=`;
    - a query (`?…`, split on `&` and `;`): every part but `KEPT_URL_PARAMETERS` with a version-id
      shaped value;
    - without a query, any `name=value` part (split on `&` and `;`) whose name looks like a
      credential (the value of an `Authorization` header: `q-ak=…&q-signature=…`).
    Text that percent-decodes (up to `PERCENT_DECODING_ROUNDS` times) into something these rules
    change is replaced by its decoded, scrubbed form. Anything else is returned as written, so a
    string without any of these is unchanged.
    """
    result = _scrub_tokens(text)
    current = result
    for _ in range(PERCENT_DECODING_ROUNDS):
        if "%" not in current:
            break
        decoded = unquote(current)
        if decoded == current:
            break
        scrubbed = _scrub_tokens(decoded)
        if scrubbed != decoded:  # a credential hidden by percent-encoding
            result = scrubbed
        current = scrubbed
    return result


def scrub_url(url: str) -> str:
    """A URL as `scrub_text` leaves it: no user info, fragment, or query parameters but
    `KEPT_URL_PARAMETERS`; the kept parts as written (not re-encoded)."""
    return scrub_text(url)


def _scrub_tokens(text: str) -> str:
    if not any(character in text for character in "?@#="):
        return text
    parts = _TOKEN_DELIMITERS.split(text)
    parts[::2] = [_scrub_token(token) for token in parts[::2]]
    return "".join(parts)


def _scrub_token(token: str) -> str:
    authority = _AUTHORITY.match(token)
    start = authority.end() if authority else 0
    at = token.rfind("@")
    if at >= start and (authority or ":" in token[:at]):
        token = token[:start] + token[at + 1 :]
    hash_at = token.find("#")
    if hash_at >= 0 and (authority or "?" in token[:hash_at] or "=" in token[hash_at:]):
        token = token[:hash_at]
    question = token.find("?")
    if question >= 0:
        query = token[question + 1 :]
        if not query:
            return token  # "what?": no parameter to remove
        kept = [part for part in query.replace(";", "&").split("&") if _kept_parameter(part)]
        return token[:question] + ("?" + "&".join(kept) if kept else "")
    if "=" not in token:
        return token
    pieces = _PAIR_SEPARATOR.split(token)  # parts at even positions, separators between
    out: list[str] = []
    for position in range(0, len(pieces), 2):
        if _credential_pair(pieces[position]):
            continue
        if out:
            out.append(pieces[position - 1])
        out.append(pieces[position])
    return "".join(out) if len(out) < len(pieces) else token


def _kept_parameter(part: str) -> bool:
    name, equals, value = part.partition("=")
    return (
        bool(equals)
        and unquote(name).lower() in KEPT_URL_PARAMETERS
        and _KEPT_PARAMETER_VALUE.fullmatch(unquote(value)) is not None
    )


def _credential_pair(part: str) -> bool:
    name, equals, value = part.partition("=")
    return (
        bool(equals)
        and bool(value)
        and not value.startswith("=")  # base64 padding ("...A=="), not a pair
        and _PAIR_NAME.fullmatch(name) is not None
        and looks_like_credential(name)
    )


# --- Encoding ------------------------------------------------------------------------------------


def dumps(value: object) -> str:
    """Compact JSON with non-ASCII text as is: the encoding of every body this source sends."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def unencodable(value: object, path: str = "") -> str | None:
    """Why `value` cannot be sent as UTF-8 JSON, naming where (never the text itself), or None.

    JSON from SCF can hold what UTF-8 JSON cannot: lone surrogates (`"\\ud800"` escapes) and
    `NaN`/`Infinity` (Python's json accepts them); a direct call can pass any Python value. Nesting
    deeper than `MAX_DEPTH` is reported too (the walk goes no deeper).
    """
    return _unencodable(value, path, 1)


def _unencodable(value: object, path: str, depth: int) -> str | None:
    where = path or "the record"
    if isinstance(value, (dict, list)) and depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} levels deep"
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
            problem = _unencodable(item, f"{path}.{name}" if path else name, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for position, item in enumerate(value):
            problem = _unencodable(item, f"{path}[{position}]", depth + 1)
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
    least `MILLISECONDS_FROM` (a number or a string of ASCII digits), or an RFC 3339 date-time
    (`_RFC3339`: `YYYY-MM-DDThh:mm:ss[.fraction][Z|±hh:mm]`; `t`, `z` and a space for `T` allowed;
    no zone is UTC; a fraction beyond microseconds is cut; a leap second `60` is the next second).

    Nothing else is read as a time (no ISO 8601 basic or week forms, no decimal comma), on every
    Python version. Raises TypeError or ValueError, whose message never quotes the value.
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
            moment = _parse_rfc3339(text)
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
    """`YYYY-MM-DDThh:mm:ss[.fraction]Z` in UTC, the fraction without trailing zeros."""
    m = moment.astimezone(timezone.utc)
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if m.microsecond:
        text += f".{m.microsecond:06d}".rstrip("0")
    return text + "Z"


def _parse_rfc3339(text: str) -> datetime:
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError("neither epoch seconds, milliseconds nor an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(group) for group in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    try:
        zone_info = timezone.utc
        if zone and zone not in ("Z", "z"):
            hours, minutes = int(zone[1:3]), int(zone[4:6])
            if minutes > 59:
                raise ValueError("zone minutes out of range")
            offset = timedelta(hours=hours, minutes=minutes)
            zone_info = timezone(-offset if zone[0] == "-" else offset)
        leap = second == 60  # RFC 3339 5.7: 23:59:60 exists; datetime has no such second
        moment = datetime(
            year,
            month,
            day,
            hour,
            minute,
            59 if leap else second,
            int(fraction[:6].ljust(6, "0")),
            tzinfo=zone_info,
        )
        moment = moment.astimezone(timezone.utc)  # OverflowError here, not in rfc3339
        return moment + timedelta(seconds=1) if leap else moment
    except (ValueError, OverflowError):  # their messages would quote parts of the text
        raise ValueError("a date-time out of range") from None


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
    appid, name = _appid(_get(cos, "cosBucket", "appid")), _text(_get(cos, "cosBucket", "name"))
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
    """Filterable extensions (lower-case alphanumeric names of at most 20 characters).

    Each comes from a string field of the record (`appid` may also be a JSON integer); a field
    that is absent, empty or of another type (an array, an object, a boolean) gives no extension,
    rather than Python's rendering of the value. `data` keeps the field as COS sent it.
    """
    bucket = _get(record["cos"], "cosBucket")
    if not isinstance(bucket, dict):
        bucket = {}
    candidates = {
        "cosbucket": _full_bucket_name(_text(bucket.get("name")), _appid(bucket.get("appid"))),
        "cosregion": _text(bucket.get("cosRegion")) or _text(bucket.get("region")),
        "coseventname": _text(record["event"].get("eventName")),
    }
    return {key: value for key, value in candidates.items() if value}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _appid(value: object) -> str | None:
    """A COS APPID (digits, sent as a string or a number), or None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**20:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    return None


def _full_bucket_name(name: str | None, appid: str | None) -> str | None:
    """`<name>-<appid>`, as the COS API and the component spell a bucket (COS sends the parts)."""
    if name and appid and not name.endswith(f"-{appid}"):
        return f"{name}-{appid}"
    return name


def _get(mapping: object, *path: str) -> object:
    for name in path:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(name)
    return mapping
