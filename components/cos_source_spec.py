"""Pure rules of TencentCosSource: argument validation, bucket names, COS triggers, function env."""

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .container_spec import validate_runtime_options
from .regions import check_region
from .schema import checked, derived, matching, setting, whole

if __package__.count("."):  # installed: cloudevents_connectors.components
    from ..runtime.relay.settings import relay_signing_key
else:  # the repository: `components` and `runtime` are top-level siblings
    from runtime.relay.settings import relay_signing_key

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

# Each settings field given as an Output stays one (checked when it resolves); `Any` below means
# "the type named in the Args, or an Output of it".


@dataclass(frozen=True)
class GatewaySettings:
    target: Any
    eventbus: Any
    api: str
    namespace: Any


@dataclass(frozen=True)
class RelaySettings:
    sink_url: Any
    public_url: Any
    supplied_secret: bool
    runtime: dict[str, Any]
    """Runtime options, validated, default image filled in."""


@dataclass(frozen=True)
class VpcSettings:
    vpc_id: Any
    subnet_id: Any


@dataclass(frozen=True)
class CosSourceSettings:
    region: Any
    bucket_short_name: Any
    app_id: Any
    create_bucket: bool
    protect: bool
    versioning: Any
    function_name: Any
    function_namespace: Any
    memory_mb: Any
    timeout_seconds: Any
    public_network: Any
    vpc: VpcSettings | None
    retry_attempts: Any
    max_event_age_seconds: Any
    force_destroy: Any
    debug: Any
    events: tuple[str, ...]
    prefix: Any
    suffix: Any
    sink_url: Any
    gateway: GatewaySettings | None
    relay: RelaySettings | None
    delivery_timeout_seconds: Any
    delivery_retry_budget_seconds: Any


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"{field}: {message}")


def _int(field: str, value: Any, low: int, high: int) -> Any:
    def rule(v: Any) -> int:
        v = whole(v)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise _fail(field, f"{v!r} must be an integer from {low} to {high}")
        return v

    return checked(value, rule)


def http_url(field: str, value: Any) -> Any:
    """An http(s) URL with a host and no user:password; an Output is checked when it resolves."""
    return checked(value, lambda v: _http_url(field, v))


def _http_url(field: str, value: Any) -> str:
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


def validate_bucket_name(short_name: Any, region: Any, field: str = "bucket_name") -> Any:
    """Checks a COS BucketName (without the APPID) as Tencent does; answers it unchanged (an
    Output of it when either is an Output, checked when both resolve)."""
    return derived(lambda name, r: _bucket_name(name, r, field), short_name, region)


def _bucket_name(short_name: Any, region: str, field: str) -> str:
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


def validate_app_id(app_id: Any, field: str = "app_id") -> Any:
    def rule(v: Any) -> str:
        if not isinstance(v, str) or not _APP_ID.match(v):
            raise _fail(field, f"{v!r} is not a Tencent Cloud APPID (10 digits)")
        return v

    return checked(app_id, rule)


def validate_events(events: Any) -> tuple[str, ...]:
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


def triggers(bucket: Any, region: Any, events: tuple[str, ...], prefix: Any, suffix: Any) -> list:
    """`scf.Function.triggers` entries: the trigger name is the bucket id; the provider adds
    `.cos.<region>.myqcloud.com` itself. One entry per event (so `events` is plain)."""
    return [
        {
            "name": bucket,
            "type": "cos",
            "trigger_desc": derived(functools.partial(trigger_desc, event), prefix, suffix),
            "cos_region": region,
        }
        for event in events
    ]


def _filter_value(args: Mapping[str, Any], field: str) -> Any:
    return checked(setting(args, field, ""), functools.partial(_filter_rule, field))


def _filter_rule(field: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > 1024:
        raise _fail(field, "must be a string of at most 1024 characters")
    if field == "suffix" and value and not value.startswith("."):
        raise _fail("suffix", f"{value!r} must start with '.' (e.g. .jpg)")
    if field == "prefix" and value.startswith("/"):
        raise _fail("prefix", f"{value!r} must not start with '/' (keys have no leading slash)")
    return value


def _gateway_target(target: Any) -> str:
    if not isinstance(target, str) or not target.strip():
        raise _fail("gateway.target", "is required: the Vanus gateway as host:port or URL")
    _http_url("gateway.target", target if "://" in target else f"http://{target}")
    return target


def _gateway(value: Mapping[str, Any]) -> GatewaySettings:
    target = checked(value["target"], _gateway_target)
    eventbus = matching("gateway.eventbus", value["eventbus"], _EVENTBUS, "an eventbus name")
    api = setting(value, "api", "gateway")
    if api not in VANUS_APIS:
        raise _fail("gateway.api", f"{api!r} must be one of {', '.join(VANUS_APIS)}")
    namespace = matching(
        "gateway.namespace", setting(value, "namespace", "default"), _EVENTBUS, "a Vanus namespace"
    )
    if "namespace" in value and api != "namespaces":
        raise _fail("gateway.namespace", "applies only with api: namespaces")
    return GatewaySettings(target, eventbus, api, namespace)


def _relay(name: str, value: Mapping[str, Any]) -> RelaySettings:
    sink = http_url("relay.sink_url", value["sink_url"])
    public = value.get("public_url")
    if public is not None:
        public = http_url("relay.public_url", public)
    if "signing_secret" in value and isinstance(value["signing_secret"], str):
        raise _fail("relay.signing_secret", "pass it as a secret (pulumi.Output.secret)")
    runtime = validate_runtime_options(
        "relay.runtime", value.get("runtime") or {}, f"{name}-relay", "relay", DEFAULT_RELAY_IMAGE
    )
    if runtime.get("mode") == "knative" and public is None:
        raise _fail("relay.public_url", "is required with runtime mode knative")
    return RelaySettings(sink, public, "signing_secret" in value, runtime)


def _vpc(value: Mapping[str, Any] | None) -> VpcSettings | None:
    if value is None:
        return None
    return VpcSettings(
        matching("function.vpc.vpc_id", value["vpc_id"], _VPC_ID, "an id like vpc-1a2b3c4d"),
        matching(
            "function.vpc.subnet_id", value["subnet_id"], _SUBNET_ID, "an id like subnet-1a2b3c4d"
        ),
    )


def _memory(value: Any) -> int:
    value = whole(value)
    if value not in MEMORY_SIZES or isinstance(value, bool):
        raise _fail("function.memory_mb", f"{value!r} must be a multiple of 128 from 128 to 3072")
    return value


def _public_network(has_vpc: bool, value: Any) -> bool:
    if not value and not has_vpc:
        # The provider can only turn public access off for a function inside a VPC, and without
        # either the function reaches no sink at all.
        raise _fail("function.public_network", "can be false only with vpc (a sink in the VPC)")
    return value


def _budget_below_timeout(budget: Any, timeout: int) -> Any:
    if budget is not None and budget >= timeout:
        # Retrying past the function's own timeout would kill the invocation mid-delivery.
        raise _fail(
            "delivery_retry_budget_seconds",
            f"{budget} must be below function.timeout_seconds {timeout}",
        )
    return budget


def check_signing_secret(secret: str) -> str:
    """A user-given relay signing secret, once it resolves, by the relay's own decoder
    (runtime/relay/settings.py: Standard Webhooks `whsec_<base64>`, at least 16 bytes of key; the
    function's rule is the same). ValueError else, naming the field and never the secret: the relay
    and the function would both refuse it at start-up."""
    try:
        relay_signing_key(secret if isinstance(secret, str) else "")
    except ValueError as error:
        problem = getattr(error, "problem", "must be whsec_<base64>")
        raise _fail("relay.signing_secret", problem) from None
    return secret


def default_function_name(project: str, stack: str, name: str) -> str:
    """`<project>-<stack>-<name>` made a valid SCF function name: a function name is unique per
    namespace and region of an account, so two stacks (or projects) must never share a default.
    Characters the rule does not allow become '-'; a name over 60 keeps its start plus a hash."""
    full = f"{project}-{stack}-{name}"
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "-" for c in full)
    cleaned = cleaned.lstrip("-_0123456789") or "cloudevents"
    if len(cleaned) > 60:
        digest = hashlib.sha256(full.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[:51].rstrip('-_')}-{digest}"
    cleaned = cleaned.rstrip("-_")
    if not _FUNCTION_NAME.match(cleaned):
        raise ValueError(f"function.name: cannot derive a valid default from {full!r}; set it")
    return cleaned


def cos_source_settings(
    name: str, args: Mapping[str, Any], *, project: str, stack: str
) -> CosSourceSettings:
    """Applies the rules to TencentCosSourceArgs already checked against their schema
    (components.schema); a ValueError names the bad or conflicting field. A field given as an
    Output is checked when it resolves, with the same message. `project` and `stack` go into the
    default function name."""
    region = checked(args["region"], lambda r: check_region("Tencent Cloud", r))
    short_name = validate_bucket_name(args["bucket_name"], region)
    app_id = validate_app_id(args["app_id"]) if "app_id" in args else None
    create_bucket = setting(args, "create_bucket", True)
    if not create_bucket:
        for field in ("protect", "versioning", "force_destroy"):
            if field in args:
                raise _fail(field, "applies only to a bucket this component creates")
    function = args.get("function") or {}
    function_name = matching(
        "function.name",
        function["name"] if "name" in function else default_function_name(project, stack, name),
        _FUNCTION_NAME,
        "an SCF function name (2-60 letters, digits, '-' or '_', starting with a letter, not "
        "ending with '-' or '_')",
    )
    namespace = matching(
        "function.namespace",
        setting(function, "namespace", "default"),
        _FUNCTION_NAMESPACE,
        "an SCF namespace name",
    )
    memory = checked(setting(function, "memory_mb", 128), _memory)
    timeout = _int("function.timeout_seconds", setting(function, "timeout_seconds", 30), 1, 900)
    vpc = _vpc(function.get("vpc"))
    public_network = checked(
        setting(function, "public_network", True),
        functools.partial(_public_network, vpc is not None),
    )
    retry_attempts = _int(
        "function.retry_attempts",
        setting(function, "retry_attempts", DEFAULT_RETRY_ATTEMPTS),
        0,
        MAX_RETRY_ATTEMPTS,
    )
    max_event_age = _int(
        "function.max_event_age_seconds",
        setting(function, "max_event_age_seconds", DEFAULT_MAX_EVENT_AGE_SECONDS),
        60,
        DEFAULT_MAX_EVENT_AGE_SECONDS,
    )
    prefix, suffix = _filter_value(args, "prefix"), _filter_value(args, "suffix")
    events = validate_events(setting(args, "events", list(DEFAULT_EVENTS)))

    destinations = [d for d in ("sink_url", "gateway", "relay") if args.get(d) is not None]
    if len(destinations) != 1:
        found = ", ".join(destinations) or "none"
        raise _fail("sink_url", f"give exactly one of sink_url, gateway or relay (found {found})")
    sink = http_url("sink_url", args["sink_url"]) if "sink_url" in destinations else None
    gateway = _gateway(args["gateway"]) if "gateway" in destinations else None
    relay = _relay(name, args["relay"]) if "relay" in destinations else None

    delivery_timeout = args.get("delivery_timeout_seconds")
    if delivery_timeout is not None:
        delivery_timeout = _int("delivery_timeout_seconds", delivery_timeout, 1, 900)
    budget = args.get("delivery_retry_budget_seconds")
    if budget is not None:
        budget = derived(
            _budget_below_timeout,
            _int("delivery_retry_budget_seconds", budget, 1, 900),
            timeout,
        )
    return CosSourceSettings(
        region=region,
        bucket_short_name=short_name,
        app_id=app_id,
        create_bucket=create_bucket,
        protect=setting(args, "protect", False),
        versioning=setting(args, "versioning", False),
        function_name=function_name,
        function_namespace=namespace,
        memory_mb=memory,
        timeout_seconds=timeout,
        public_network=public_network,
        vpc=vpc,
        retry_attempts=retry_attempts,
        max_event_age_seconds=max_event_age,
        force_destroy=setting(args, "force_destroy", False),
        debug=setting(args, "debug", False),
        events=events,
        prefix=prefix,
        suffix=suffix,
        sink_url=sink,
        gateway=gateway,
        relay=relay,
        delivery_timeout_seconds=delivery_timeout,
        delivery_retry_budget_seconds=budget,
    )


def function_env(s: CosSourceSettings) -> dict[str, Any]:
    """Environment of the SCF function, each value a string or an Output of one (the relay's URL
    and signing secret are added by the component)."""
    env = {
        "FUNCTION_NAME": s.function_name,
        "DEBUG_MODE": derived(lambda debug: "true" if debug else "false", s.debug),
    }
    if s.sink_url is not None:
        env["K_SINK"] = s.sink_url
    if s.gateway:
        env["EVENT_GATEWAY"] = s.gateway.target
        env["VANUS_EVENTBUS"] = s.gateway.eventbus
        env["VANUS_API"] = s.gateway.api
        if s.gateway.api == "namespaces":
            env["VANUS_NAMESPACE"] = s.gateway.namespace
    if s.delivery_timeout_seconds is not None:
        env["DELIVERY_TIMEOUT_SECONDS"] = derived(str, s.delivery_timeout_seconds)
    if s.delivery_retry_budget_seconds is not None:
        env["DELIVERY_RETRY_BUDGET_SECONDS"] = derived(str, s.delivery_retry_budget_seconds)
    return env
