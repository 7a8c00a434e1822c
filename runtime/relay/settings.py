"""The relay's settings, read and validated from the environment in one place.

Environment variables (defaults in brackets):
  K_SINK (required: http(s) URL of the sink), RELAY_SIGNING_SECRET (required: Standard Webhooks
  `whsec_<base64>`, at least 16 bytes of key), DELIVERY_TIMEOUT_SECONDS [3] per attempt,
  DELIVERY_RETRY_BUDGET_SECONDS [5], DELIVERY_BACKOFF_SECONDS [0.2],
  DELIVERY_BACKOFF_MAX_SECONDS [2], DELIVERY_CONCURRENCY [64] (connections to the sink),
  RETRY_AFTER_SECONDS [5] (told to the sender when the sink is down),
  RELAY_MAX_EVENTS_PER_SECOND [100] (sustained rate of new event ids; sizes the replay cache at
  rate x 600 s entries, about 200 bytes each: 12 MiB at the default), plus the receiver's PORT
  [8080], HOST [0.0.0.0], MAX_BODY_BYTES [256 KiB: a COS record is 1-2 KB], DRAIN_TIMEOUT_SECONDS
  [20], MAX_IN_FLIGHT [64], HEADER_TIMEOUT_SECONDS [10], BODY_TIMEOUT_SECONDS [3],
  MEMORY_LIMIT_BYTES [the cgroup limit, else 256 MiB], LOG_LEVEL [INFO].

The retry budget is kept below the SCF function's per-attempt timeout (10 s by default) so the
function hears the relay's answer instead of timing out and resending.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ..receiver.settings import (
    EnvReader,
    ServerSettings,
    SettingError,
    read_server_settings,
)
from .signature import TOLERANCE_SECONDS, signing_key

# COS notification records are 1-2 KB (the event around one, about 2-3 KB). The signature can only
# be checked once the body is read, so whoever can reach the relay, key or not, can make it
# reserve MAX_BODY_BYTES per connection until BODY_TIMEOUT_SECONDS: both are sized for COS events,
# not for arbitrary payloads (256 KiB is 100x the largest record; the function sends the whole
# body right after the head, so 3 s is generous even for 256 KiB at 1 Mbit/s).
MAX_BODY_BYTES = 256 * 1024
BODY_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class RelaySettings:
    sink_url: str
    signing_key: bytes = field(repr=False)
    timeout_seconds: float = 3.0
    retry_budget_seconds: float = 5.0
    backoff_seconds: float = 0.2
    backoff_max_seconds: float = 2.0
    concurrency: int = 64
    retry_after_seconds: int = 5
    max_events_per_second: int = 100
    server: ServerSettings = field(
        default_factory=lambda: ServerSettings(
            max_body_bytes=MAX_BODY_BYTES, body_timeout_seconds=BODY_TIMEOUT_SECONDS
        )
    )

    @property
    def replay_capacity(self) -> int:
        """Event ids the replay cache holds: the rate over the longest life of an entry."""
        return self.max_events_per_second * 2 * TOLERANCE_SECONDS


def read_settings(env: EnvReader) -> RelaySettings:
    return RelaySettings(
        sink_url=_sink_url(env.required("K_SINK")),
        signing_key=relay_signing_key(env.required("RELAY_SIGNING_SECRET")),
        timeout_seconds=env.number("DELIVERY_TIMEOUT_SECONDS", 3.0, minimum=0.001, maximum=600),
        retry_budget_seconds=env.number(
            "DELIVERY_RETRY_BUDGET_SECONDS", 5.0, minimum=0.001, maximum=3600
        ),
        backoff_seconds=env.number("DELIVERY_BACKOFF_SECONDS", 0.2, minimum=0.001, maximum=60),
        backoff_max_seconds=env.number(
            "DELIVERY_BACKOFF_MAX_SECONDS", 2.0, minimum=0.001, maximum=600
        ),
        concurrency=env.integer("DELIVERY_CONCURRENCY", 64, minimum=1, maximum=1024),
        retry_after_seconds=env.integer("RETRY_AFTER_SECONDS", 5, minimum=1, maximum=3600),
        max_events_per_second=env.integer(
            "RELAY_MAX_EVENTS_PER_SECOND", 100, minimum=1, maximum=10_000
        ),
        server=read_server_settings(
            env, max_body_bytes=MAX_BODY_BYTES, body_timeout_seconds=BODY_TIMEOUT_SECONDS
        ),
    )


def _sink_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SettingError("K_SINK", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingError("K_SINK", "must be an http:// or https:// URL with a host")
    return value


def relay_signing_key(value: str) -> bytes:
    """The HMAC key of RELAY_SIGNING_SECRET, decoded strictly: a secret that is not clean base64 is
    refused, not trimmed. SettingError (whose message never holds the secret) else; the components
    check a user-given secret with this same rule."""
    try:
        key = signing_key(value)
    except (binascii.Error, ValueError):
        raise SettingError("RELAY_SIGNING_SECRET", "must be whsec_<base64>") from None
    if len(key) < 16:
        raise SettingError("RELAY_SIGNING_SECRET", "must hold at least 16 bytes of key")
    return key
