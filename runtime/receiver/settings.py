"""Reading settings from the environment in one place, with one clear line and exit code 2 on error.

Values are never echoed back in error messages: a misplaced secret must not end up in a log.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class SettingError(ValueError):
    """A missing or invalid setting; `name` is the environment variable."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class EnvReader:
    """Typed accessors over an environment mapping; an empty value counts as unset."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def required(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            raise SettingError(name, "is required")
        return value

    def integer(
        self, name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise SettingError(name, "must be an integer") from None
        _check_range(name, number, minimum, maximum)
        return number

    def number(
        self,
        name: str,
        default: float,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise SettingError(name, "must be a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise SettingError(name, "must be a finite number")
        _check_range(name, number, minimum, maximum)
        return number

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name)
        if value is None:
            return default
        for choice in choices:
            if value.lower() == choice.lower():
                return choice
        raise SettingError(name, f"must be one of {', '.join(choices)}")


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise SettingError(name, f"must be at least {minimum}")
    if maximum is not None and number > maximum:
        raise SettingError(name, f"must be at most {maximum}")


MIB = 1024 * 1024
# Used when neither MEMORY_LIMIT_BYTES nor a cgroup limit is known: the components' default pod
# memory limit (256 Mi), so a bare `python -m ...` behaves as it would in a default pod.
DEFAULT_MEMORY_LIMIT_BYTES = 256 * MIB
# What the process needs besides request bodies: the interpreter, aiohttp, the cloudevents and
# cloud SDKs, metrics, logs (measured: 40-65 MiB after imports), the relay's replay cache (up to
# 12 MiB) and the unfinished request heads of MAX_CONNECTIONS connections (HEADER_MEMORY_BYTES).
RESERVED_MEMORY_BYTES = 112 * MIB
# Each byte of body admitted can cost up to three bytes at once: the chunks as they arrive, the
# joined body, and the handler's working copy (the re-encoded data of a structured event, or the
# upload buffer). The in-flight budget is a third of what is left after the reserve.
BODY_MEMORY_FACTOR = 3
# Parsing JSON costs far more than the body: Python holds every element as an object (an empty
# array `[]`, two bytes of body, is a 56-byte list plus an 8-byte pointer; a number with a
# fraction is kept as its text in a simplejson.RawJSON, about 140 bytes). Measured with
# tracemalloc over parse_events (tests/runtime/test_receiver_hostile.py holds it to this): up to
# 40 bytes per body byte
# (`[1e1],[1e1],...`), 37 for `1.5,...`, 33 for `[[]],...`, 26 for `{},...`, 17 for a batch of
# minimal events. A structured or batch request therefore reserves this many bytes of the budget
# per body byte, and such bodies are limited to in_flight_bytes / JSON_MEMORY_FACTOR (1 MiB for
# 256 Mi).
JSON_MEMORY_FACTOR = 48
# Events per batch request: each becomes an upload, and the request must finish within the
# sender's timeout.
MAX_BATCH_EVENTS = 1000
# aiohttp keeps an unfinished request head in memory: at most MAX_HEADERS lines of
# MAX_HEADER_FIELD_BYTES. Measured VmHWM growth per connection holding such a head: 480 KB for 30
# lines of 8000 bytes (twice the raw bytes: the buffer and the parsed strings).
MAX_HEADERS = 32
MAX_HEADER_FIELD_BYTES = 8190
HEADER_MEMORY_PER_CONNECTION = 512 * 1024
# Open connections are capped (MAX_CONNECTIONS, default 64) so that their unfinished heads fit in
# this share of the reserve.
HEADER_MEMORY_BYTES = 32 * MIB
# Connections accepted beyond MAX_CONNECTIONS that serve only /healthz and /readyz: requests
# waiting for their objects (lake mode) may hold every capped connection, and a liveness probe
# answered 503 would get a healthy pod restarted. 64 + 4 heads at the measured 480 KB (31.1 MiB)
# still fit HEADER_MEMORY_BYTES.
PROBE_CONNECTIONS = 4
CGROUP_V2_LIMIT = "/sys/fs/cgroup/memory.max"
CGROUP_V1_LIMIT = "/sys/fs/cgroup/memory/memory.limit_in_bytes"
# cgroup v1 reports "no limit" as a page-rounded 2**63 - 1.
_UNLIMITED = 1 << 60


@dataclass(frozen=True)
class ServerSettings:
    """What every receiver needs, whatever it does with the events.

    Sizes are in bytes, times in seconds. `in_flight_bytes` is the memory budget for request
    bodies: the sum of the bodies being read or handled at once never exceeds it (a request
    reserves its Content-Length, or `max_body_bytes` when chunked, before its body is read).
    """

    port: int = 8080
    max_body_bytes: int = 16 * MIB
    drain_timeout_seconds: float = 20.0
    max_in_flight: int = 64
    log_level: str = "INFO"
    host: str = "0.0.0.0"
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    memory_limit_bytes: int = DEFAULT_MEMORY_LIMIT_BYTES
    in_flight_bytes: int = (
        DEFAULT_MEMORY_LIMIT_BYTES - RESERVED_MEMORY_BYTES
    ) // BODY_MEMORY_FACTOR
    max_batch_events: int = MAX_BATCH_EVENTS
    max_connections: int = HEADER_MEMORY_BYTES // HEADER_MEMORY_PER_CONNECTION


def in_flight_budget(memory_limit_bytes: int) -> int:
    """Bytes of request bodies allowed in flight for a process limited to `memory_limit_bytes`:
    (limit - RESERVED_MEMORY_BYTES) / BODY_MEMORY_FACTOR, never below zero."""
    return max(0, (memory_limit_bytes - RESERVED_MEMORY_BYTES) // BODY_MEMORY_FACTOR)


def minimum_memory_limit(max_body_bytes: int) -> int:
    """The smallest memory limit, in bytes, whose in-flight budget admits one body of
    `max_body_bytes`: RESERVED_MEMORY_BYTES + BODY_MEMORY_FACTOR * max_body_bytes. Below it
    `read_server_settings` refuses to start (the components check pod limits against it)."""
    return RESERVED_MEMORY_BYTES + BODY_MEMORY_FACTOR * max_body_bytes


def cgroup_memory_limit(
    paths: tuple[str, ...] = (CGROUP_V2_LIMIT, CGROUP_V1_LIMIT),
) -> int | None:
    """The container's memory limit from cgroup v2 `memory.max` (or v1 `memory.limit_in_bytes`);
    None when there is none ("max", an absurdly large v1 value, or no cgroup file)."""
    for path in paths:
        try:
            with open(path, encoding="ascii") as file:
                text = file.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isascii() and text.isdigit() and len(text) < 20 and 0 < int(text) < _UNLIMITED:
            return int(text)
        return None
    return None


def read_server_settings(
    env: EnvReader,
    *,
    max_body_bytes: int = ServerSettings.max_body_bytes,
    body_timeout_seconds: float = ServerSettings.body_timeout_seconds,
    cgroup_limit: Callable[[], int | None] = cgroup_memory_limit,
) -> ServerSettings:
    """PORT, HOST, MAX_BODY_BYTES (default `max_body_bytes`: each runtime sizes its own),
    DRAIN_TIMEOUT_SECONDS, MAX_IN_FLIGHT, LOG_LEVEL, HEADER_TIMEOUT_SECONDS, BODY_TIMEOUT_SECONDS
    (default `body_timeout_seconds`, likewise),
    MEMORY_LIMIT_BYTES (default: the cgroup limit, else 256 MiB), MAX_BATCH_EVENTS,
    MAX_CONNECTIONS (open connections; those beyond are answered 503 and closed on accept; each
    one over the default takes HEADER_MEMORY_PER_CONNECTION from the in-flight budget).

    Raises SettingError when MAX_BODY_BYTES does not fit the in-flight budget the memory limit
    allows: such a body could never be admitted.
    """
    defaults = ServerSettings()
    memory_limit = env.integer("MEMORY_LIMIT_BYTES", 0, minimum=1)
    if not memory_limit:
        memory_limit = cgroup_limit() or DEFAULT_MEMORY_LIMIT_BYTES
    max_connections = env.integer(
        "MAX_CONNECTIONS", defaults.max_connections, minimum=1, maximum=100_000
    )
    # Connections beyond what the reserve's header share covers take their heads' memory from
    # the body budget.
    extra_heads = max(0, max_connections - defaults.max_connections) * HEADER_MEMORY_PER_CONNECTION
    budget = in_flight_budget(memory_limit - extra_heads)
    body_limit = env.integer("MAX_BODY_BYTES", max_body_bytes, minimum=1)
    if body_limit > budget:
        raise SettingError(
            "MAX_BODY_BYTES",
            f"must be at most {budget} bytes, the in-flight budget a memory limit of "
            f"{memory_limit} bytes allows with MAX_CONNECTIONS {max_connections} (raise the "
            "memory limit or lower the body limit)",
        )
    return ServerSettings(
        port=env.integer("PORT", defaults.port, minimum=0, maximum=65535),
        max_body_bytes=body_limit,
        drain_timeout_seconds=env.number(
            "DRAIN_TIMEOUT_SECONDS", defaults.drain_timeout_seconds, minimum=0, maximum=3600
        ),
        max_in_flight=env.integer("MAX_IN_FLIGHT", defaults.max_in_flight, minimum=1),
        log_level=env.choice("LOG_LEVEL", defaults.log_level, LOG_LEVELS),
        host=env.text("HOST", defaults.host) or defaults.host,
        header_timeout_seconds=env.number(
            "HEADER_TIMEOUT_SECONDS", defaults.header_timeout_seconds, minimum=0.1, maximum=600
        ),
        body_timeout_seconds=env.number(
            "BODY_TIMEOUT_SECONDS", body_timeout_seconds, minimum=0.1, maximum=600
        ),
        memory_limit_bytes=memory_limit,
        in_flight_bytes=budget,
        max_batch_events=env.integer(
            "MAX_BATCH_EVENTS", defaults.max_batch_events, minimum=1, maximum=100_000
        ),
        max_connections=max_connections,
    )


def load_or_exit(
    loader: Callable[[EnvReader], T], environ: Mapping[str, str] | None = None, *, program: str
) -> T:
    """Run `loader` over the environment; on a SettingError print one line to stderr and exit 2."""
    try:
        return loader(EnvReader(os.environ if environ is None else environ))
    except SettingError as error:
        print(f"{program}: invalid setting {error.name}: {error.problem}", file=sys.stderr)
        raise SystemExit(2) from None
