"""Settings of the COS source function, read from the environment once and validated as a whole.

An invalid setting raises SettingsError naming the variable; the message never repeats a secret.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from urllib.parse import quote, urlsplit

VANUS_APIS = ("gateway", "namespaces")
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off", "")


class SettingsError(ValueError):
    """A setting of the function is missing or invalid."""


class Settings:
    __slots__ = (
        "backoff_initial",
        "backoff_max",
        "concurrency",
        "debug",
        "function_name",
        "retry_budget",
        "signing_key",
        "sink_url",
        "timeout",
    )

    def __init__(
        self,
        sink_url: str,
        function_name: str | None = None,
        debug: bool = False,
        signing_key: bytes | None = None,
        timeout: float = 10.0,
        concurrency: int = 16,
        retry_budget: float = 60.0,
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
    ) -> None:
        self.sink_url = sink_url
        self.function_name = function_name
        self.debug = debug
        self.signing_key = signing_key
        self.timeout = timeout
        self.concurrency = concurrency
        self.retry_budget = retry_budget
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    def __repr__(self) -> str:  # never show the signing key
        signed = "yes" if self.signing_key else "no"
        return f"Settings(sink_url={self.sink_url!r}, signed={signed}, debug={self.debug})"


def load_settings(environ: Mapping[str, str]) -> Settings:
    return Settings(
        sink_url=sink_url(environ),
        function_name=(environ.get("FUNCTION_NAME") or environ.get("SCF_FUNCTIONNAME") or None),
        debug=_flag(environ, "DEBUG_MODE"),
        signing_key=signing_key(environ.get("SINK_SIGNING_SECRET", "")),
        timeout=_number(environ, "DELIVERY_TIMEOUT_SECONDS", 10.0),
        concurrency=int(_number(environ, "DELIVERY_CONCURRENCY", 16, integer=True, maximum=256)),
        retry_budget=_number(environ, "DELIVERY_RETRY_BUDGET_SECONDS", 60.0),
        backoff_initial=_number(environ, "DELIVERY_BACKOFF_SECONDS", 0.2),
        backoff_max=_number(environ, "DELIVERY_BACKOFF_MAX_SECONDS", 5.0),
    )


def sink_url(environ: Mapping[str, str]) -> str:
    """`K_SINK`, or the Vanus gateway URL formed from `EVENT_GATEWAY` and `VANUS_EVENTBUS`."""
    k_sink = environ.get("K_SINK", "").strip()
    gateway = environ.get("EVENT_GATEWAY", "").strip()
    eventbus = environ.get("VANUS_EVENTBUS", "").strip()
    if k_sink and (gateway or eventbus):
        raise SettingsError("set either K_SINK or EVENT_GATEWAY + VANUS_EVENTBUS, not both")
    if k_sink:
        return _checked_url("K_SINK", k_sink)
    if not gateway and not eventbus:
        raise SettingsError("no destination: set K_SINK, or EVENT_GATEWAY and VANUS_EVENTBUS")
    if not gateway:
        raise SettingsError("EVENT_GATEWAY is required with VANUS_EVENTBUS")
    if not eventbus:
        raise SettingsError("VANUS_EVENTBUS is required with EVENT_GATEWAY")
    # The seed's `target` is host:port; keep a scheme when one is given (https works too).
    base = gateway if "://" in gateway else f"http://{gateway}"
    base = _checked_url("EVENT_GATEWAY", base).rstrip("/")
    api = environ.get("VANUS_API", "gateway").strip().lower() or "gateway"
    if api == "gateway":
        return f"{base}/gateway/{quote(eventbus, safe='')}"
    if api == "namespaces":
        namespace = environ.get("VANUS_NAMESPACE", "").strip() or "default"
        bus = quote(eventbus, safe="")
        return f"{base}/namespaces/{quote(namespace, safe='')}/eventbus/{bus}/events"
    raise SettingsError(f"VANUS_API must be one of {', '.join(VANUS_APIS)}, not {api!r}")


def signing_key(secret: str) -> bytes | None:
    """The HMAC key of a Standard Webhooks secret `whsec_<base64>` (None when unset)."""
    secret = secret.strip()
    if not secret:
        return None
    encoded = secret.removeprefix("whsec_")
    digits = encoded.rstrip("=")
    try:
        if len(encoded) - len(digits) > 2:
            raise ValueError("too much padding")
        # Padding is optional in what we accept; validate=True refuses any other character.
        key = base64.b64decode(digits + "=" * (-len(digits) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SettingsError("SINK_SIGNING_SECRET must be whsec_<base64>") from None
    if len(key) < 16:
        raise SettingsError("SINK_SIGNING_SECRET is too short (at least 16 bytes of key)")
    return key


def _checked_url(name: str, url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise SettingsError(f"{name} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(f"{name} must be an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise SettingsError(f"{name} must not carry credentials; use SINK_SIGNING_SECRET")
    return url


def _flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(f"{name} must be true or false")


def _number(
    environ: Mapping[str, str],
    name: str,
    default: float,
    integer: bool = False,
    maximum: float | None = None,
) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise SettingsError(f"{name} must be {kind}, not {raw!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise SettingsError(f"{name} must be positive and finite")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum:g}")
    return value
