"""Object keys: `OSS_KEY_PREFIX + event id`, refused when OSS could not (or should not) store it.

A key is refused (400 `invalid-key`, nothing written) when:

- it is not 1-1023 bytes of UTF-8, or starts with `/` or `\\` (OSS object naming conventions);
- it holds a control character (U+0000-U+001F, U+007F-U+009F): they cannot travel in the
  request line and CloudEvents Strings exclude them;
- one of its `/`-separated segments is `.` or `..` (this includes the keys `.` and `..`, and
  `a/.`): the HTTP layers under both OSS SDKs remove dot segments from the URL path (RFC 3986
  5.2.4: urllib3/requests under oss2, yarl/aiohttp under alibabacloud-oss-v2), so the request
  would name another object or the bucket itself and fail as a misleading `NoSuchBucket` or
  signature mismatch. oss2 percent-encodes `/` in keys, so only whole-key `.`/`..` reach the
  URL as dot segments there; alibabacloud-oss-v2 keeps `/`, so every segment does.

Empty segments (`a//b`), a trailing `/` and trailing dots (`a.`, `a..b`) are kept: neither the
SDKs nor their HTTP layers rewrite them, and OSS stores them as named.
"""

from __future__ import annotations

import re

from ..receiver.errors import InvalidEvent

MAX_KEY_BYTES = 1023
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_DOT_SEGMENTS = frozenset({".", ".."})


class InvalidKey(InvalidEvent):
    """The id (with the prefix) cannot be an OSS object key: 400, nothing written."""

    code = "invalid-key"


def check_prefix(prefix: str) -> None:
    """Raise InvalidKey unless `prefix` can start a key (same rules, one byte left for the id)."""
    if prefix:
        # Its last segment is completed by the id ("logs/." + "x" is "logs/.x"): checked with it.
        _check(
            prefix, "OSS_KEY_PREFIX", MAX_KEY_BYTES - 1, complete_segments=prefix.rsplit("/", 1)[0]
        )


def object_key(prefix: str, event_id: str) -> str:
    """The key for an event; raises InvalidKey with a reason that does not echo the id."""
    key = prefix + event_id
    _check(key, "object key (prefix + id)", MAX_KEY_BYTES, complete_segments=key)
    return key


def _check(key: str, what: str, max_bytes: int, *, complete_segments: str) -> None:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidKey(f"{what} is not valid Unicode text") from None
    if size > max_bytes:
        raise InvalidKey(f"{what} is {size} bytes of UTF-8; OSS allows at most {max_bytes}")
    if key.startswith(("/", "\\")):
        raise InvalidKey(f"{what} must not start with '/' or '\\'")
    if _CONTROL.search(key):
        raise InvalidKey(f"{what} must not contain control characters")
    if _DOT_SEGMENTS.intersection(complete_segments.split("/")):
        raise InvalidKey(
            f"{what} must not have '.' or '..' as a path segment (HTTP clients would remove it)"
        )
