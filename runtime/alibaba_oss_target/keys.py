"""Object keys: `OSS_KEY_PREFIX + event id`, refused when OSS could not (or should not) store it."""

from __future__ import annotations

import re

from runtime.receiver.errors import InvalidEvent

MAX_KEY_BYTES = 1023
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidKey(InvalidEvent):
    """The id (with the prefix) cannot be an OSS object key: 400, nothing written."""

    code = "invalid-key"


def check_prefix(prefix: str) -> None:
    if prefix:
        _check(prefix, "OSS_KEY_PREFIX", MAX_KEY_BYTES - 1)


def object_key(prefix: str, event_id: str) -> str:
    """The key for an event; raises InvalidKey with a reason that does not echo the id."""
    key = prefix + event_id
    _check(key, "object key (prefix + id)", MAX_KEY_BYTES)
    return key


def _check(key: str, what: str, max_bytes: int) -> None:
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
