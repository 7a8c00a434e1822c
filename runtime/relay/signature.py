"""Standard Webhooks verification (https://www.standardwebhooks.com/), in two steps so that nothing
is read from an unauthenticated sender before its headers have passed:

1. `check_headers` (before the body is read): exactly one `webhook-id`, `webhook-timestamp` and
   `webhook-signature`, each well-formed, and the timestamp within TOLERANCE_SECONDS of now;
2. `verify` (once the body is read): one `v1` entry matches HMAC-SHA256(key,
   `<webhook-id>.<webhook-timestamp>.` + body bytes).

What is accepted, and why (every other input is a SignatureError, answered 401):
- `webhook-id`: 1-256 visible ASCII characters (0x21-0x7E). The relay requires it to equal the
  event id, which the function derives as a UUID, so nothing legitimate is longer or wider.
- `webhook-timestamp`: 1-12 ASCII digits (Unix seconds). `str.isdigit()` also accepts "٣" and
  "²", and `int()` refuses more than 4,300 digits with a ValueError: both were 500s.
- `webhook-signature`: 1-16 space-separated `<version>,<base64>` entries (several entries are how
  a sender rotates keys, per the specification). Versions other than `v1` (e.g. `v1a`,
  asymmetric) are skipped; a `v1` entry must be canonical base64 of 32 bytes. An entry without a
  comma, or more than 16 entries, is malformed.
- Each of the three headers exactly once: a repeated header is refused rather than guessed at
  (which copy did the signer mean?). Signatures for several keys go in one header, as above.

The reference `standardwebhooks` library (1.1.0) is used by the tests as the oracle; it is not used
here because it checks the headers and the body in one call (the body would have to be read first)
and parses the timestamp with a bare `int()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# Older (or newer) timestamps are refused, so a captured request cannot be replayed later.
TOLERANCE_SECONDS = 5 * 60
MAX_SIGNATURES = 16
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
_ID = re.compile(r"[\x21-\x7e]{1,256}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_VERSION = re.compile(r"[a-z0-9]{1,8}")
_SIGNATURE_BYTES = 32


class SignatureError(Exception):
    """Why a request's signature was refused (safe to log: it never contains the secret)."""


@dataclass(frozen=True)
class SignedHeaders:
    """The well-formed `webhook-*` headers of one request: id, Unix seconds (and their text as
    sent, which is what was signed), v1 digests."""

    msg_id: str
    timestamp: int
    timestamp_text: str
    signatures: tuple[bytes, ...]


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (validated by the settings)."""
    encoded = secret.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def check_headers(headers: Headers, now: float) -> SignedHeaders:
    """Parse the three `webhook-*` headers and check the timestamp window; SignatureError else.

    `headers` is a mapping or an iterable of (name, value) pairs; a multi-dict such as aiohttp's
    `request.headers` yields every copy of a repeated header, which is then refused.
    """
    found: dict[str, str] = {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        lower = name.lower()
        if lower in HEADERS:
            if lower in found:
                raise SignatureError(f"{lower} appears more than once")
            found[lower] = value
    missing = [name for name in HEADERS if not found.get(name)]
    if missing:
        raise SignatureError(f"missing {', '.join(missing)}")
    msg_id = found["webhook-id"]
    if not _ID.fullmatch(msg_id):
        raise SignatureError("webhook-id must be 1-256 visible ASCII characters")
    if not _TIMESTAMP.fullmatch(found["webhook-timestamp"]):
        raise SignatureError("webhook-timestamp is not whole seconds (1-12 ASCII digits)")
    text = found["webhook-timestamp"]
    timestamp = int(text)
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now")
    return SignedHeaders(msg_id, timestamp, text, _signatures(found["webhook-signature"]))


def _signatures(value: str) -> tuple[bytes, ...]:
    entries = value.split(" ")
    if len(entries) > MAX_SIGNATURES:
        raise SignatureError(f"webhook-signature has more than {MAX_SIGNATURES} entries")
    digests = []
    for entry in entries:
        version, comma, encoded = entry.partition(",")
        if not comma or not _VERSION.fullmatch(version) or not encoded.isascii():
            raise SignatureError("webhook-signature is not a list of <version>,<base64> entries")
        if version != "v1":
            continue
        try:
            digest = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError("a v1 signature is not valid base64") from None
        if len(digest) != _SIGNATURE_BYTES:
            raise SignatureError("a v1 signature is not 32 bytes")
        digests.append(digest)
    if not digests:
        raise SignatureError("no v1 signature")
    return tuple(digests)


def verify_body(key: bytes, signed: SignedHeaders, body: bytes) -> None:
    """Return when one of the v1 signatures matches the body; SignatureError otherwise."""
    content = f"{signed.msg_id}.{signed.timestamp_text}.".encode("ascii") + body
    expected = hmac.new(key, content, hashlib.sha256).digest()
    # Compare against every entry (no early exit on the position of the match).
    matched = False
    for candidate in signed.signatures:
        matched |= hmac.compare_digest(candidate, expected)
    if not matched:
        raise SignatureError("no matching v1 signature")


def verify(key: bytes, headers: Headers, body: bytes, now: float) -> None:
    """Both steps at once: `check_headers` then `verify_body`."""
    verify_body(key, check_headers(headers, now), body)
