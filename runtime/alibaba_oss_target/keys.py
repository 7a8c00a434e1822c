"""Object keys: `OSS_KEY_PREFIX` + the rendered key template (`{id}` by default, see
templates.py), refused (400 `invalid-key`, nothing written) when OSS could not (or should not)
store it; the rules and their sources are in key_rules.py.
"""

from __future__ import annotations

from ..receiver.errors import InvalidEvent
from .key_rules import MAX_KEY_BYTES, key_problem


class InvalidKey(InvalidEvent):
    """The id (with the prefix) cannot be an OSS object key: 400, nothing written."""

    code = "invalid-key"


def check_prefix(prefix: str) -> None:
    """Raise InvalidKey unless `prefix` can start a key (same rules, one byte left for the id)."""
    if prefix:
        # Its last segment is completed by the id ("logs/." + "x" is "logs/.x"): checked with it.
        _raise(
            key_problem(
                prefix,
                "OSS_KEY_PREFIX",
                MAX_KEY_BYTES - 1,
                complete_segments=prefix.rsplit("/", 1)[0],
            )
        )


def object_key(prefix: str, rendered: str, what: str = "object key (prefix + id)") -> str:
    """The key for an event (`rendered`: its id, or its rendered key template); raises
    InvalidKey (naming `what`) with a reason that does not echo the id."""
    key = prefix + rendered
    check_key(key, what)
    return key


def check_key(key: str, what: str) -> None:
    """Raise InvalidKey (naming `what`) unless `key` is a whole valid object key."""
    _raise(key_problem(key, what))


def _raise(problem: str | None) -> None:
    if problem is not None:
        raise InvalidKey(problem)
