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


@dataclass(frozen=True)
class ServerSettings:
    """What every receiver needs, whatever it does with the events."""

    port: int = 8080
    max_body_bytes: int = 16 * 1024 * 1024
    drain_timeout_seconds: float = 20.0
    max_in_flight: int = 64
    log_level: str = "INFO"


def read_server_settings(env: EnvReader) -> ServerSettings:
    """PORT, MAX_BODY_BYTES, DRAIN_TIMEOUT_SECONDS, MAX_IN_FLIGHT, LOG_LEVEL."""
    defaults = ServerSettings()
    return ServerSettings(
        port=env.integer("PORT", defaults.port, minimum=0, maximum=65535),
        max_body_bytes=env.integer("MAX_BODY_BYTES", defaults.max_body_bytes, minimum=1),
        drain_timeout_seconds=env.number(
            "DRAIN_TIMEOUT_SECONDS", defaults.drain_timeout_seconds, minimum=0, maximum=3600
        ),
        max_in_flight=env.integer("MAX_IN_FLIGHT", defaults.max_in_flight, minimum=1),
        log_level=env.choice("LOG_LEVEL", defaults.log_level, LOG_LEVELS),
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
