"""The target's settings, read and validated from the environment in one place.

Environment variables (defaults in brackets):
  OSS_ENDPOINT (required; no scheme means https), OSS_BUCKET (required), OSS_REGION (optional:
  V4 signing; required with STS credentials), credentials from exactly one source
  (CREDENTIAL_SOURCES):
    accessKey: OSS_ACCESS_KEY_ID + OSS_ACCESS_KEY_SECRET (+ OSS_SECURITY_TOKEN for a fixed STS;
               with another source, OSS_SECURITY_TOKEN is refused as a second source);
    stsFile:   OSS_CREDENTIALS_FILE, a JSON file {AccessKeyId, AccessKeySecret, SecurityToken,
               Expiration} re-read when it changes;
    rrsa:      ALIBABA_CLOUD_ROLE_ARN + ALIBABA_CLOUD_OIDC_PROVIDER_ARN +
               ALIBABA_CLOUD_OIDC_TOKEN_FILE (what ACK's pod-identity webhook injects), optional
               ALIBABA_CLOUD_ROLE_SESSION_NAME [alibaba-oss-target], ALIBABA_CLOUD_STS_ENDPOINT
               (host or http(s)://host:port; else alibabacloud-credentials' own choice from
               ALIBABA_CLOUD_STS_REGION / ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED, sts.aliyuncs.com),
               OSS_CREDENTIALS_DURATION_SECONDS [3600] (900-43200). The process also checks
               the STS file and the OIDC token file at start-up (check_credential_files);
  OSS_KEY_PREFIX [""], OSS_KEY_TEMPLATE [{id}] (see templates.py; must hold {id} unless batching
  is on), STORE [data] (data|event),
  RESPONSE_SOURCE [alibabaoss/<bucket>], OSS_MAX_CONCURRENCY [16], OSS_RETRY_BUDGET_SECONDS [10],
  OSS_TIMEOUT_SECONDS [10], OSS_HEAD_START_BYTES [1048576] (a binary-mode body with a
  Content-Length at least this large is uploaded while it arrives, see service.py; 0: never),
  plus the receiver's PORT [8080], MAX_BODY_BYTES [16 MiB],
  DRAIN_TIMEOUT_SECONDS [20], MAX_IN_FLIGHT [64], LOG_LEVEL [INFO].
  Rolled objects (batching.py): BATCH_MAX_EVENTS [0 = off, one object per event],
  BATCH_MAX_BYTES [8 MiB, uncompressed; at most the in-flight byte budget], BATCH_MAX_SECONDS [5],
  BATCH_COMPRESSION [none] (none|gzip|zstd). With batching on, MAX_IN_FLIGHT defaults to
  max(64, 2 x BATCH_MAX_EVENTS): a request waiting for its object holds a handler slot (and its
  body's bytes of the budget), so single-event requests can fill an object by count.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ..receiver.settings import (
    EnvReader,
    ServerSettings,
    SettingError,
    read_server_settings,
)
from .bucket_name import RULE as BUCKET_NAME_RULE
from .bucket_name import bucket_name_problem
from .keys import InvalidKey, check_prefix
from .templates import (
    DEFAULT_TEMPLATE,
    InvalidTemplate,
    KeyTemplate,
    check_mode,
    parse_template,
)

STORE_CHOICES = ("data", "event")
COMPRESSIONS = ("none", "gzip", "zstd")
MIB = 1024 * 1024
# Smaller bodies arrive in a few reads: overlapping their two hops gains little (measured).
DEFAULT_HEAD_START_BYTES = MIB
# OSS PutObject takes at most 5 GiB; far beyond what an in-memory object should hold anyway.
MAX_OBJECT_BYTES = 5 * 1024 * MIB
# oss2's own endpoint rule (host[:port] with an optional scheme), restricted to http/https.
_ENDPOINT = re.compile(r"^(https?://)?[\w.-]+(:\d+)?/?$", re.ASCII | re.IGNORECASE)
_REGION = re.compile(r"^[a-z0-9-]+$")


RRSA_VARIABLES = (
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
)
CREDENTIAL_SOURCES = {
    # OSS_SECURITY_TOKEN belongs to the static pair: with a file or RRSA it is a second source.
    "accessKey": ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SECURITY_TOKEN"),
    "stsFile": ("OSS_CREDENTIALS_FILE",),
    "rrsa": RRSA_VARIABLES,
}


@dataclass(frozen=True)
class RrsaSettings:
    """AssumeRoleWithOIDC parameters (the names alibabacloud-credentials reads)."""

    role_arn: str
    oidc_provider_arn: str
    oidc_token_file: str
    role_session_name: str | None = None
    sts_endpoint: str | None = None
    duration_seconds: int = 3600


@dataclass(frozen=True)
class BatchLimits:
    """When a rolled object closes: `max_events` lines (>= 1), `max_bytes` uncompressed NDJSON
    bytes, `max_seconds` after its first line; `compression`: none | gzip | zstd."""

    max_events: int
    max_bytes: int = 8 * MIB
    max_seconds: float = 5.0
    compression: str = "none"


@dataclass(frozen=True)
class TargetSettings:
    endpoint: str
    bucket: str
    access_key_id: str = ""
    access_key_secret: str = field(default="", repr=False)
    security_token: str | None = field(default=None, repr=False)
    credentials_file: str | None = None
    rrsa: RrsaSettings | None = None
    region: str | None = None
    key_prefix: str = ""
    key_template: KeyTemplate = field(default_factory=lambda: parse_template(DEFAULT_TEMPLATE))
    batch: BatchLimits | None = None
    store: str = "data"
    response_source: str = ""
    max_concurrency: int = 16
    retry_budget_seconds: float = 10.0
    timeout_seconds: float = 10.0
    head_start_bytes: int = DEFAULT_HEAD_START_BYTES
    server: ServerSettings = field(default_factory=ServerSettings)

    @property
    def credentials_source(self) -> str:
        """accessKey | stsFile | rrsa."""
        if self.rrsa is not None:
            return "rrsa"
        return "stsFile" if self.credentials_file else "accessKey"


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
    if bucket_name_problem(bucket) is not None:
        # The component checks stack files with the same rule, so a name it accepts starts here.
        raise SettingError("OSS_BUCKET", f"must be {BUCKET_NAME_RULE}")
    region = env.text("OSS_REGION")
    if region is not None and not _REGION.match(region):
        raise SettingError("OSS_REGION", "must look like cn-hangzhou")
    prefix = env.text("OSS_KEY_PREFIX", "") or ""
    try:
        check_prefix(prefix)
    except InvalidKey as error:
        raise SettingError("OSS_KEY_PREFIX", error.message) from None
    try:
        template = parse_template(env.text("OSS_KEY_TEMPLATE", DEFAULT_TEMPLATE) or "", prefix)
    except InvalidTemplate as error:
        raise SettingError("OSS_KEY_TEMPLATE", str(error)) from None
    server = read_server_settings(env)
    batch = batch_limits(env, server)
    try:
        check_mode(template, prefix, batched=batch is not None)
    except InvalidTemplate as error:
        raise SettingError("OSS_KEY_TEMPLATE", str(error)) from None
    if batch is not None and env.raw("MAX_IN_FLIGHT") is None:
        server = dataclasses.replace(
            server, max_in_flight=max(server.max_in_flight, 2 * batch.max_events)
        )
    source = _credentials_source(env)
    if region is None and (source != "accessKey" or env.text("OSS_SECURITY_TOKEN")):
        # alibabacloud-oss-v2's V1 signer sends an STS token as `security-token`, not the
        # `x-oss-security-token` OSS documents; its V4 signer sends (and signs) the right header.
        raise SettingError("OSS_REGION", "is required with STS credentials (V4 signing)")
    rrsa = None
    if source == "rrsa":
        rrsa = RrsaSettings(
            role_arn=env.required("ALIBABA_CLOUD_ROLE_ARN"),
            oidc_provider_arn=env.required("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
            oidc_token_file=env.required("ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
            role_session_name=_session_name(env.text("ALIBABA_CLOUD_ROLE_SESSION_NAME")),
            sts_endpoint=_sts_endpoint(env.text("ALIBABA_CLOUD_STS_ENDPOINT")),
            duration_seconds=env.integer(
                "OSS_CREDENTIALS_DURATION_SECONDS", 3600, minimum=900, maximum=43200
            ),
        )
    return TargetSettings(
        endpoint=endpoint,
        bucket=bucket,
        access_key_id=env.required("OSS_ACCESS_KEY_ID") if source == "accessKey" else "",
        access_key_secret=env.required("OSS_ACCESS_KEY_SECRET") if source == "accessKey" else "",
        security_token=env.text("OSS_SECURITY_TOKEN") if source == "accessKey" else None,
        credentials_file=env.text("OSS_CREDENTIALS_FILE") if source == "stsFile" else None,
        rrsa=rrsa,
        region=region,
        key_prefix=prefix,
        key_template=template,
        batch=batch,
        store=env.choice("STORE", "data", STORE_CHOICES),
        response_source=env.text("RESPONSE_SOURCE", f"alibabaoss/{bucket}") or "",
        max_concurrency=env.integer("OSS_MAX_CONCURRENCY", 16, minimum=1, maximum=512),
        retry_budget_seconds=env.number("OSS_RETRY_BUDGET_SECONDS", 10.0, minimum=0, maximum=600),
        timeout_seconds=env.number("OSS_TIMEOUT_SECONDS", 10.0, minimum=0.1, maximum=600),
        head_start_bytes=env.integer(
            "OSS_HEAD_START_BYTES", DEFAULT_HEAD_START_BYTES, minimum=0, maximum=MAX_OBJECT_BYTES
        ),
        server=server,
    )


def batch_limits(env: EnvReader, server: ServerSettings) -> BatchLimits | None:
    """The BATCH_* settings, or None when BATCH_MAX_EVENTS is 0 (one object per event). Raises
    SettingError when one is invalid or BATCH_MAX_BYTES exceeds `server.in_flight_bytes` (the
    components apply this same rule to a pod's memory limit before deploying)."""
    max_events = env.integer("BATCH_MAX_EVENTS", 0, minimum=0, maximum=1_000_000)
    max_bytes = env.integer("BATCH_MAX_BYTES", 8 * MIB, minimum=1, maximum=MAX_OBJECT_BYTES)
    max_seconds = env.number("BATCH_MAX_SECONDS", 5.0, minimum=0.01, maximum=3600)
    compression = env.choice("BATCH_COMPRESSION", "none", COMPRESSIONS)
    if max_events == 0:
        return None
    if max_bytes > server.in_flight_bytes:
        # Waiting requests keep their bodies' bytes in the budget until their object is stored.
        raise SettingError(
            "BATCH_MAX_BYTES",
            f"must be at most {server.in_flight_bytes} bytes, the in-flight budget the memory "
            "limit allows (open objects count against it)",
        )
    return BatchLimits(max_events, max_bytes, max_seconds, compression)


def _credentials_source(env: EnvReader) -> str:
    """Exactly one source: the first variable of each that is set decides; two sources (or
    none) is an error naming them, never a silent precedence."""
    present = [
        name
        for name, variables in CREDENTIAL_SOURCES.items()
        if any(env.text(variable) for variable in variables)
    ]
    if len(present) > 1:
        first = next(name for name in CREDENTIAL_SOURCES[present[0]] if env.text(name))
        raise SettingError(
            first, f"credentials from more than one source ({', '.join(present)}); set one"
        )
    if not present:
        # The classic (and most common) case names the variable to set.
        return "accessKey"
    return present[0]


# STS AssumeRoleWithOIDC's RoleSessionName: 2-64 letters, digits, `.`, `@`, `-`, `_`.
_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$", re.ASCII)


def _session_name(value: str | None) -> str | None:
    if value is not None and not _SESSION_NAME.match(value):
        raise SettingError(
            "ALIBABA_CLOUD_ROLE_SESSION_NAME",
            "must be 2-64 letters, digits, '.', '@', '-' or '_' (STS RoleSessionName)",
        )
    return value


def check_credential_files(settings: TargetSettings) -> TargetSettings:
    """Start-up check of the files the credentials source reads, so a mistake is one line and
    exit 2 (through `load_or_exit`), not a pod running not-ready: the STS file must be readable
    and valid (its Expiration may be past: the pod then starts not ready until it is rotated);
    the OIDC token file must be a readable, non-empty file. The kubelet mounts projected
    service-account tokens before it starts the container, so a missing token file is a wrong
    path or a missing volume; a restart (the kubelet's backoff) also covers any delay.
    Raises SettingError naming the variable (never quoting file content)."""
    # Imported here: the rest of this module stays free of the OSS SDK that credentials loads.
    from .credentials import (
        CredentialsUnavailable,
        parse_sts_text,
        read_credentials_file,
    )

    if settings.credentials_file:
        path = settings.credentials_file
        try:
            parse_sts_text(read_credentials_file(path), where=path)
        except CredentialsUnavailable as error:
            raise SettingError("OSS_CREDENTIALS_FILE", str(error)) from None
    if settings.rrsa is not None:
        try:
            read_credentials_file(settings.rrsa.oidc_token_file)
        except CredentialsUnavailable as error:
            raise SettingError("ALIBABA_CLOUD_OIDC_TOKEN_FILE", str(error)) from None
    return settings


def read_startup_settings(env: EnvReader) -> TargetSettings:
    """`read_settings` plus `check_credential_files`: what the process runs with."""
    return check_credential_files(read_settings(env))


_STS_ENDPOINT = re.compile(r"^(https?://)?[\w.-]+(:\d+)?/?$", re.ASCII | re.IGNORECASE)


def _sts_endpoint(value: str | None) -> str | None:
    if value is None:
        return None
    if not _STS_ENDPOINT.match(value):
        raise SettingError(
            "ALIBABA_CLOUD_STS_ENDPOINT", "must be host[:port] with an optional http(s):// scheme"
        )
    return value.rstrip("/")
