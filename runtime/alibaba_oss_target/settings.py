"""The target's settings, read and validated from the environment in one place.

Environment variables (defaults in brackets):
  OSS_ENDPOINT (required; no scheme means https), OSS_BUCKET (required), OSS_ACCESS_KEY_ID and
  OSS_ACCESS_KEY_SECRET (required), OSS_SECURITY_TOKEN (STS, optional), OSS_REGION (optional:
  V4 signing), OSS_KEY_PREFIX [""], STORE [data] (data|event), RESPONSE_SOURCE
  [alibabaoss/<bucket>], OSS_MAX_CONCURRENCY [16], OSS_RETRY_BUDGET_SECONDS [10],
  OSS_TIMEOUT_SECONDS [10], plus the receiver's PORT [8080], MAX_BODY_BYTES [16 MiB],
  DRAIN_TIMEOUT_SECONDS [20], MAX_IN_FLIGHT [64], LOG_LEVEL [INFO].
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..receiver.settings import (
    EnvReader,
    ServerSettings,
    SettingError,
    read_server_settings,
)
from .keys import InvalidKey, check_prefix

STORE_CHOICES = ("data", "event")
# oss2's own endpoint rule (host[:port] with an optional scheme), restricted to http/https.
_ENDPOINT = re.compile(r"^(https?://)?[\w.-]+(:\d+)?/?$", re.ASCII | re.IGNORECASE)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]+$")


@dataclass(frozen=True)
class TargetSettings:
    endpoint: str
    bucket: str
    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    region: str | None = None
    key_prefix: str = ""
    store: str = "data"
    response_source: str = ""
    max_concurrency: int = 16
    retry_budget_seconds: float = 10.0
    timeout_seconds: float = 10.0
    server: ServerSettings = field(default_factory=ServerSettings)


def normalise_endpoint(value: str) -> str:
    """`oss-cn-hangzhou.aliyuncs.com` -> `https://oss-cn-hangzhou.aliyuncs.com` (never plain http
    by accident, unlike the upstream target); an explicit http:// is kept (local emulators)."""
    if not _ENDPOINT.match(value):
        raise SettingError("OSS_ENDPOINT", "must be host[:port] with an optional http(s):// scheme")
    if "://" not in value:
        value = "https://" + value
    return value.rstrip("/")


def read_settings(env: EnvReader) -> TargetSettings:
    endpoint = normalise_endpoint(env.required("OSS_ENDPOINT"))
    bucket = env.required("OSS_BUCKET")
    if not _BUCKET.match(bucket) or "--" in bucket:
        raise SettingError(
            "OSS_BUCKET", "must be 3-63 lower-case letters, digits or hyphens, not ending in '-'"
        )
    region = env.text("OSS_REGION")
    if region is not None and not _REGION.match(region):
        raise SettingError("OSS_REGION", "must look like cn-hangzhou")
    prefix = env.text("OSS_KEY_PREFIX", "") or ""
    try:
        check_prefix(prefix)
    except InvalidKey as error:
        raise SettingError("OSS_KEY_PREFIX", error.message) from None
    return TargetSettings(
        endpoint=endpoint,
        bucket=bucket,
        access_key_id=env.required("OSS_ACCESS_KEY_ID"),
        access_key_secret=env.required("OSS_ACCESS_KEY_SECRET"),
        security_token=env.text("OSS_SECURITY_TOKEN"),
        region=region,
        key_prefix=prefix,
        store=env.choice("STORE", "data", STORE_CHOICES),
        response_source=env.text("RESPONSE_SOURCE", f"alibabaoss/{bucket}") or "",
        max_concurrency=env.integer("OSS_MAX_CONCURRENCY", 16, minimum=1, maximum=512),
        retry_budget_seconds=env.number("OSS_RETRY_BUDGET_SECONDS", 10.0, minimum=0, maximum=600),
        timeout_seconds=env.number("OSS_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=600),
        server=read_server_settings(env),
    )
