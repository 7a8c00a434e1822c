"""Pure rules of TencentCosSource: argument validation, bucket names, COS triggers, function env."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .container_spec import validate_runtime_options
from .regions import check_region

DEFAULT_RELAY_IMAGE = "ghcr.io/cloudevents-connectors/relay:0.1.0"
DEFAULT_EVENTS = ("cos:ObjectCreated:*",)
FUNCTION_RUNTIME = "Python3.10"
FUNCTION_HANDLER = "index.main_handler"
SIGNING_ENTRY = "signing-secret"

# SCF CreateTrigger event names for COS (Tencent SCF docs 583/9707).
COS_EVENTS = (
    "cos:ObjectCreated:*",
    "cos:ObjectCreated:Put",
    "cos:ObjectCreated:Post",
    "cos:ObjectCreated:Copy",
    "cos:ObjectCreated:CompleteMultipartUpload",
    "cos:ObjectCreated:Origin",
    "cos:ObjectCreated:Replication",
    "cos:ObjectRemove:*",
    "cos:ObjectRemove:Delete",
    "cos:ObjectRemove:DeleteMarkerCreated",
    "cos:ObjectRestore:Post",
    "cos:ObjectRestore:Completed",
)
VANUS_APIS = ("gateway", "namespaces")
# The provider's validator (resource_tc_scf_function.go) refuses any mem_size that is not a multiple
# of 128, although the SCF API takes 64: 128 to 3072 in steps of 128.
MEMORY_SIZES = tuple(range(128, 3073, 128))
# The SCF API documents letters, digits, space, comma, period, newline and Chinese characters for a
# function description (CreateFunction `Description`, at most 1000); nothing else is sent.
FUNCTION_DESCRIPTION = "Turns COS notifications into CloudEvents. cloudevents connectors"
DESCRIPTION_CHARACTERS = re.compile(r"^[A-Za-z0-9 ,.\n\u4e00-\u9fff]{0,1000}$")
# SCF async invocation (COS triggers invoke asynchronously): SCF's own defaults are 2 retries and
# 6 hours of message retention; UpdateFunctionEventInvokeConfig takes 0-2 and 60-21600 s.
DEFAULT_RETRY_ATTEMPTS = 2
MAX_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 21600

# COS: BucketName of lowercase letters, digits and '-', not starting or ending with '-'; the whole
# domain `<name>-<appid>.cos.<region>.myqcloud.com` at most 60 characters (COS docs 436/13312).
_COS_SHORT_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_APP_ID = re.compile(r"^[0-9]{10}$")
_COS_DOMAIN_MAX = 60
_VPC_ID = re.compile(r"^vpc-[a-z0-9]{8}$")
_SUBNET_ID = re.compile(r"^subnet-[a-z0-9]{8}$")
_FUNCTION_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,58}[A-Za-z0-9]$")
_FUNCTION_NAMESPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,28}[A-Za-z0-9]$")
_EVENTBUS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

OPTIONS = (
    "region",
    "bucket_name",
    "app_id",
    "create_bucket",
    "protect",
    "versioning",
    "function_name",
    "function_namespace",
    "memory_mb",
    "timeout_seconds",
    "public_network",
    "function_vpc",
    "retry_attempts",
    "max_event_age_seconds",
    "force_destroy",
    "debug",
    "events",
    "prefix",
    "suffix",
    "sink_url",
    "gateway",
    "relay",
    "delivery_timeout_seconds",
    "delivery_retry_budget_seconds",
    "package_dir",
)


@dataclass(frozen=True)
class GatewaySettings:
    target: str
    eventbus: str
    api: str
    namespace: str


@dataclass(frozen=True)
class RelaySettings:
    sink_url: str
    public_url: str | None
    supplied_secret: bool
    runtime: dict[str, Any]
    """Runtime options, validated, default image filled in."""


@dataclass(frozen=True)
class VpcSettings:
    vpc_id: str
    subnet_id: str


@dataclass(frozen=True)
class CosSourceSettings:
    region: str
    bucket_short_name: str
    app_id: str | None
    create_bucket: bool
    protect: bool
    versioning: bool
    function_name: str
    function_namespace: str
    memory_mb: int
    timeout_seconds: int
    public_network: bool
    vpc: VpcSettings | None
    retry_attempts: int
    max_event_age_seconds: int
    force_destroy: bool
    debug: bool
    events: tuple[str, ...]
    prefix: str
    suffix: str
    sink_url: str | None
    gateway: GatewaySettings | None
    relay: RelaySettings | None
    delivery_timeout_seconds: int | None
    delivery_retry_budget_seconds: int | None


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"{field}: {message}")


def _bool(args: Mapping[str, Any], field: str, default: bool) -> bool:
    value = args.get(field, default)
    if not isinstance(value, bool):
        raise _fail(field, f"{value!r} must be true or false")
    return value


def _int(field: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _fail(field, f"{value!r} must be an integer from {low} to {high}")
    return value


def http_url(field: str, value: Any) -> str:
    """An http(s) URL with a host and no user:password."""
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        port_ok = parts is not None and (parts.port or True)
    except ValueError:
        parts, port_ok = None, False
    if not parts or not port_ok or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _fail(field, f"{value!r} is not an http:// or https:// URL with a host")
    if parts.username or parts.password:
        raise _fail(field, "must not carry credentials")
    return value


def bucket_full_name(short_name: str, app_id: str) -> str:
    """The COS bucket id `<name>-<appid>`."""
    return f"{short_name}-{app_id}"


def validate_bucket_name(short_name: Any, region: str, field: str = "bucket_name") -> str:
    """Checks a COS BucketName (without the APPID) as Tencent does; answers it unchanged."""
    if not isinstance(short_name, str) or not _COS_SHORT_NAME.match(short_name):
        raise _fail(
            field,
            f"{short_name!r} is not a COS bucket name: lowercase letters, digits and '-', not "
            "starting or ending with '-', without the -APPID suffix",
        )
    domain = f"{bucket_full_name(short_name, '0' * 10)}.cos.{region}.myqcloud.com"
    if len(domain) > _COS_DOMAIN_MAX:
        room = len(short_name) - (len(domain) - _COS_DOMAIN_MAX)
        raise _fail(
            field,
            f"{short_name!r} is too long: <name>-<appid>.cos.{region}.myqcloud.com must fit in "
            f"{_COS_DOMAIN_MAX} characters, leaving {room} for the name in this region",
        )
    return short_name


def validate_app_id(app_id: Any, field: str = "app_id") -> str:
    if not isinstance(app_id, str) or not _APP_ID.match(app_id):
        raise _fail(field, f"{app_id!r} is not a Tencent Cloud APPID (10 digits)")
    return app_id


def validate_events(events: Any, prefix: str, suffix: str) -> tuple[str, ...]:
    if isinstance(events, str):
        raise _fail(
            "events",
            f"is the string {events!r}, not a list; write one `- <event>` line per event",
        )
    if not isinstance(events, (list, tuple)) or not events:
        raise _fail("events", "must be a non-empty list of COS event names")
    for event in events:
        if event not in COS_EVENTS:
            raise _fail("events", f"unknown COS event {event!r}; known: {', '.join(COS_EVENTS)}")
    if len(set(events)) != len(events):
        raise _fail("events", "lists an event twice")
    for event in events:
        group = event.rsplit(":", 1)[0]
        wildcard = f"{group}:*"
        if event != wildcard and wildcard in events:
            # One upload invokes at most one trigger, and COS refuses a second ObjectCreated
            # binding once `ObjectCreated:*` is bound without a filter.
            raise _fail("events", f"{event} overlaps {wildcard} on the same bucket and filter")
    return tuple(events)


def trigger_desc(event: str, prefix: str = "", suffix: str = "") -> str:
    """The compact JSON `TriggerDesc` of one COS trigger, as SCF's CreateTrigger takes it."""
    desc = {"event": event, "filter": {"Prefix": prefix, "Suffix": suffix}}
    return json.dumps(desc, separators=(",", ":"))


def triggers(bucket: str, region: str, events: tuple[str, ...], prefix: str, suffix: str) -> list:
    """`scf.Function.triggers` entries: the trigger name is the bucket id; the provider adds
    `.cos.<region>.myqcloud.com` itself."""
    return [
        {
            "name": bucket,
            "type": "cos",
            "trigger_desc": trigger_desc(event, prefix, suffix),
            "cos_region": region,
        }
        for event in events
    ]


def _filter_value(args: Mapping[str, Any], field: str) -> str:
    value = args.get(field, "")
    if not isinstance(value, str) or len(value) > 1024:
        raise _fail(field, "must be a string of at most 1024 characters")
    if field == "suffix" and value and not value.startswith("."):
        raise _fail("suffix", f"{value!r} must start with '.' (e.g. .jpg)")
    if field == "prefix" and value.startswith("/"):
        raise _fail("prefix", f"{value!r} must not start with '/' (keys have no leading slash)")
    return value


def _gateway(value: Any) -> GatewaySettings:
    if not isinstance(value, Mapping):
        raise _fail("gateway", "must be a mapping with target and eventbus")
    unknown = sorted(set(value) - {"target", "eventbus", "api", "namespace"})
    if unknown:
        raise _fail(f"gateway.{unknown[0]}", "unknown option")
    target = value.get("target")
    if not isinstance(target, str) or not target.strip():
        raise _fail("gateway.target", "is required: the Vanus gateway as host:port or URL")
    http_url("gateway.target", target if "://" in target else f"http://{target}")
    eventbus = value.get("eventbus")
    if not isinstance(eventbus, str) or not _EVENTBUS.match(eventbus):
        raise _fail("gateway.eventbus", f"{eventbus!r} is not an eventbus name")
    api = value.get("api", "gateway")
    if api not in VANUS_APIS:
        raise _fail("gateway.api", f"{api!r} must be one of {', '.join(VANUS_APIS)}")
    namespace = value.get("namespace", "default")
    if not isinstance(namespace, str) or not _EVENTBUS.match(namespace):
        raise _fail("gateway.namespace", f"{namespace!r} is not a Vanus namespace")
    if "namespace" in value and api != "namespaces":
        raise _fail("gateway.namespace", "applies only with api: namespaces")
    return GatewaySettings(target, eventbus, api, namespace)


def _relay(name: str, value: Any) -> RelaySettings:
    if not isinstance(value, Mapping):
        raise _fail("relay", "must be a mapping with sink_url")
    unknown = sorted(set(value) - {"sink_url", "public_url", "signing_secret", "runtime"})
    if unknown:
        raise _fail(f"relay.{unknown[0]}", "unknown option")
    sink = http_url("relay.sink_url", value.get("sink_url"))
    public = value.get("public_url")
    if public is not None:
        http_url("relay.public_url", public)
    if "signing_secret" in value and isinstance(value["signing_secret"], str):
        raise _fail("relay.signing_secret", "pass it as a secret (pulumi.Output.secret)")
    runtime = validate_runtime_options(
        "relay.runtime", value.get("runtime") or {}, f"{name}-relay", "relay", DEFAULT_RELAY_IMAGE
    )
    if runtime.get("mode") == "knative" and public is None:
        raise _fail("relay.public_url", "is required with runtime mode knative")
    return RelaySettings(sink, public, "signing_secret" in value, runtime)


def _vpc(value: Any) -> VpcSettings | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise _fail("function_vpc", "must be a mapping with vpc_id and subnet_id")
    unknown = sorted(set(value) - {"vpc_id", "subnet_id"})
    if unknown:
        raise _fail(f"function_vpc.{unknown[0]}", "unknown option")
    for field, pattern, example in (
        ("vpc_id", _VPC_ID, "vpc-1a2b3c4d"),
        ("subnet_id", _SUBNET_ID, "subnet-1a2b3c4d"),
    ):
        if field not in value:
            raise _fail(f"function_vpc.{field}", "is required")
        if not isinstance(value[field], str) or not pattern.match(value[field]):
            raise _fail(f"function_vpc.{field}", f"{value[field]!r} is not an id like {example}")
    return VpcSettings(value["vpc_id"], value["subnet_id"])


def cos_source_settings(name: str, args: Mapping[str, Any]) -> CosSourceSettings:
    """Validates TencentCosSourceArgs; a ValueError names the bad or conflicting field."""
    unknown = sorted(set(args) - set(OPTIONS))
    if unknown:
        raise _fail(unknown[0], "unknown argument")
    for required in ("region", "bucket_name"):
        if required not in args:
            raise _fail(required, "is required")
    region = check_region("Tencent Cloud", args["region"])
    short_name = validate_bucket_name(args["bucket_name"], region)
    app_id = validate_app_id(args["app_id"]) if "app_id" in args else None
    create_bucket = _bool(args, "create_bucket", True)
    if not create_bucket:
        for field in ("protect", "versioning", "force_destroy"):
            if field in args:
                raise _fail(field, "applies only to a bucket this component creates")
    function_name = args.get("function_name", name)
    if not isinstance(function_name, str) or not _FUNCTION_NAME.match(function_name):
        raise _fail(
            "function_name",
            f"{function_name!r} is not an SCF function name (2-60 letters, digits, '-' or '_', "
            "starting with a letter, not ending with '-' or '_')",
        )
    namespace = args.get("function_namespace", "default")
    if not isinstance(namespace, str) or not _FUNCTION_NAMESPACE.match(namespace):
        raise _fail("function_namespace", f"{namespace!r} is not an SCF namespace name")
    memory = args.get("memory_mb", 128)
    if memory not in MEMORY_SIZES or isinstance(memory, bool):
        raise _fail("memory_mb", f"{memory!r} must be a multiple of 128 from 128 to 3072")
    timeout = _int("timeout_seconds", args.get("timeout_seconds", 30), 1, 900)
    vpc = _vpc(args.get("function_vpc"))
    public_network = _bool(args, "public_network", True)
    if not public_network and vpc is None:
        # The provider can only turn public access off for a function inside a VPC, and without
        # either the function reaches no sink at all.
        raise _fail("public_network", "can be false only with function_vpc (a sink in the VPC)")
    retry_attempts = _int(
        "retry_attempts",
        args.get("retry_attempts", DEFAULT_RETRY_ATTEMPTS),
        0,
        MAX_RETRY_ATTEMPTS,
    )
    max_event_age = _int(
        "max_event_age_seconds",
        args.get("max_event_age_seconds", DEFAULT_MAX_EVENT_AGE_SECONDS),
        60,
        DEFAULT_MAX_EVENT_AGE_SECONDS,
    )
    prefix, suffix = _filter_value(args, "prefix"), _filter_value(args, "suffix")
    events = validate_events(args.get("events", list(DEFAULT_EVENTS)), prefix, suffix)

    destinations = [d for d in ("sink_url", "gateway", "relay") if args.get(d) is not None]
    if len(destinations) != 1:
        found = ", ".join(destinations) or "none"
        raise _fail("sink_url", f"give exactly one of sink_url, gateway or relay (found {found})")
    sink = http_url("sink_url", args["sink_url"]) if "sink_url" in destinations else None
    gateway = _gateway(args["gateway"]) if "gateway" in destinations else None
    relay = _relay(name, args["relay"]) if "relay" in destinations else None

    delivery_timeout = args.get("delivery_timeout_seconds")
    if delivery_timeout is not None:
        _int("delivery_timeout_seconds", delivery_timeout, 1, 900)
    budget = args.get("delivery_retry_budget_seconds")
    if budget is not None:
        _int("delivery_retry_budget_seconds", budget, 1, 900)
        if budget >= timeout:
            # Retrying past the function's own timeout would kill the invocation mid-delivery.
            raise _fail(
                "delivery_retry_budget_seconds",
                f"{budget} must be below timeout_seconds {timeout}",
            )
    return CosSourceSettings(
        region=region,
        bucket_short_name=short_name,
        app_id=app_id,
        create_bucket=create_bucket,
        protect=_bool(args, "protect", False),
        versioning=_bool(args, "versioning", False),
        function_name=function_name,
        function_namespace=namespace,
        memory_mb=memory,
        timeout_seconds=timeout,
        public_network=public_network,
        vpc=vpc,
        retry_attempts=retry_attempts,
        max_event_age_seconds=max_event_age,
        force_destroy=_bool(args, "force_destroy", False),
        debug=_bool(args, "debug", False),
        events=events,
        prefix=prefix,
        suffix=suffix,
        sink_url=sink,
        gateway=gateway,
        relay=relay,
        delivery_timeout_seconds=delivery_timeout,
        delivery_retry_budget_seconds=budget,
    )


def function_env(s: CosSourceSettings) -> dict[str, str]:
    """Plain environment of the SCF function (the relay's URL and signing secret are added by the
    component, as Outputs)."""
    env = {"FUNCTION_NAME": s.function_name, "DEBUG_MODE": "true" if s.debug else "false"}
    if s.sink_url:
        env["K_SINK"] = s.sink_url
    if s.gateway:
        env["EVENT_GATEWAY"] = s.gateway.target
        env["VANUS_EVENTBUS"] = s.gateway.eventbus
        env["VANUS_API"] = s.gateway.api
        if s.gateway.api == "namespaces":
            env["VANUS_NAMESPACE"] = s.gateway.namespace
    if s.delivery_timeout_seconds is not None:
        env["DELIVERY_TIMEOUT_SECONDS"] = str(s.delivery_timeout_seconds)
    if s.delivery_retry_budget_seconds is not None:
        env["DELIVERY_RETRY_BUDGET_SECONDS"] = str(s.delivery_retry_budget_seconds)
    return env
