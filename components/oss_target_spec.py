"""Pure rules of AlibabaOssTarget: argument validation, bucket names, endpoint, RAM documents."""

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .container_spec import memory_bytes
from .regions import check_region
from .schema import checked, derived, is_output, setting

if __package__.count("."):  # installed: cloudevents_connectors.components
    from ..runtime.alibaba_oss_target.bucket_name import bucket_name_problem
    from ..runtime.alibaba_oss_target.settings import batch_limits
    from ..runtime.alibaba_oss_target.templates import InvalidTemplate, check_mode, parse_template
    from ..runtime.receiver.settings import (
        EnvReader,
        ServerSettings,
        SettingError,
        in_flight_budget,
    )
else:  # the repository: `components` and `runtime` are top-level siblings
    from runtime.alibaba_oss_target.bucket_name import bucket_name_problem
    from runtime.alibaba_oss_target.settings import batch_limits
    from runtime.alibaba_oss_target.templates import InvalidTemplate, check_mode, parse_template
    from runtime.receiver.settings import EnvReader, ServerSettings, SettingError, in_flight_budget

DEFAULT_IMAGE = "ghcr.io/cloudevents-connectors/alibaba-oss-target:0.1.0"
ENCRYPTIONS = ("AES256", "KMS")
STORE_MODES = ("data", "event")
CREDENTIAL_MODES = ("accessKey", "rrsa")
# The ServiceAccount annotation ACK's ack-pod-identity-webhook reads (Alibaba docs,
# "ack-pod-identity-webhook": pod-identity.alibabacloud.com/role-name = the RAM role's name).
ROLE_NAME_ANNOTATION = "pod-identity.alibabacloud.com/role-name"
OIDC_AUDIENCE = "sts.aliyuncs.com"

# RAM name rules (RAM API CreateUser/CreatePolicy/CreateRole): user 1-64 of letters, digits, '.',
# '_' and '-', not starting with '-'; custom policy 1-128 of letters, digits and '-'; role 1-64 of
# letters, digits, '.' and '-'.
_RAM_USER = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._-]{0,63}$")
_RAM_POLICY = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_RAM_ROLE = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_RAM_RULES = {
    "ram_user_name": (
        _RAM_USER,
        64,
        "1-64 letters, digits, '.', '_' or '-', not starting with '-'",
    ),
    "ram_policy_name": (_RAM_POLICY, 128, "1-128 letters, digits or '-'"),
    "ram_role_name": (_RAM_ROLE, 64, "1-64 letters, digits, '.' or '-'"),
}
_ACCESS_KEY_ID = re.compile(r"^[A-Za-z0-9]{16,128}$")
# ACK's RRSA OIDC provider: acs:ram::<account id>:oidc-provider/<name> (ack-rrsa-<cluster id>).
_OIDC_PROVIDER_ARN = re.compile(r"^acs:ram::[0-9]+:oidc-provider/[A-Za-z0-9._-]{1,128}$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")

COMPRESSIONS = ("none", "gzip", "zstd")
# The runtime's own bounds (runtime/alibaba_oss_target/settings.py, BATCH_*).
_BATCH_BOUNDS = {
    "max_events": (1, 1_000_000, True),
    "max_bytes": (1, 5 * 1024**3, True),
    "max_seconds": (0.01, 3600, False),
}


@dataclass(frozen=True)
class RrsaSettings:
    """RRSA: a RAM role the cluster's OIDC provider may hand to exactly one ServiceAccount."""

    oidc_provider_arn: Any  # each field: str, or an Output of one (checked when it resolves)
    oidc_issuer_url: Any
    service_account_name: Any
    ram_role_name: Any


@dataclass(frozen=True)
class OssTargetSettings:
    """Checked settings; a field given as an Output stays one (checked when it resolves)."""

    region: Any
    bucket_name: Any
    create_bucket: bool
    encryption: str
    kms_key_id: Any
    versioning: bool
    expiration_days: int | None
    protect: bool
    force_destroy: Any
    supplied_key: bool
    ram_user_name: Any
    ram_policy_name: Any
    endpoint: Any
    store: Any
    key_prefix: Any
    rrsa: RrsaSettings | None = None
    internal_endpoint: Any = False
    """use_internal_endpoint: OSS (and, with RRSA, STS) through Alibaba's VPC endpoints."""
    key_template: Any = None
    batch: dict[str, Any] | None = None


def validate_bucket_name(name: Any, field: str = "bucket_name") -> Any:
    """The runtime's own rule (runtime/alibaba_oss_target/bucket_name.py), so a name the component
    accepts never makes the pod exit at start-up. An Output is checked when it resolves."""

    def rule(value: Any) -> str:
        problem = bucket_name_problem(value)
        if problem:
            raise ValueError(f"{field}: {problem}")
        return value

    return checked(name, rule)


def default_ram_name(field: str, project: str, stack: str, name: str, suffix: str) -> str:
    """`<project>-<stack>-<name>-<suffix>` made valid for `field`'s RAM rule: RAM names are unique
    per account, so two stacks (or projects) must never share one. Characters the rule does not
    allow become '-'; a name over the limit keeps its start plus a hash of the whole."""
    pattern, limit, _ = _RAM_RULES[field]
    allowed = {"ram_user_name": "._-", "ram_policy_name": "-", "ram_role_name": ".-"}[field]
    full = f"{project}-{stack}-{name}-{suffix}"
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in allowed) else "-" for c in full)
    cleaned = cleaned.lstrip("-") or "cloudevents"
    if len(cleaned) > limit:
        digest = hashlib.sha256(full.encode()).hexdigest()[:8]
        cleaned = f"{cleaned[: limit - 9].rstrip('-')}-{digest}"
    if not pattern.match(cleaned):
        raise ValueError(f"{field}: cannot derive a valid default from {full!r}; set it")
    return cleaned


def _ram_name(field: str, value: Any) -> Any:
    pattern, _, what = _RAM_RULES[field]

    def rule(v: Any) -> str:
        if not isinstance(v, str) or not pattern.match(v):
            raise ValueError(f"{field}: {v!r} is not a valid RAM name ({what})")
        return v

    return checked(value, rule)


def oss_endpoint(region: str, internal: bool = False) -> str:
    """HTTPS endpoint of OSS in `region`; the internal one is reachable only from Alibaba Cloud."""
    return f"https://oss-{region}{'-internal' if internal else ''}.aliyuncs.com"


def put_only_policy(bucket_name: str, kms_key_id: str | None = None, region: str = "*") -> str:
    """RAM policy document allowing exactly PutObject on the objects of one bucket and, when the
    bucket encrypts with a customer KMS key, generating and decrypting data keys with that key
    alone (Alibaba's OSS server-side encryption docs: writing with a specified CMK needs
    kms:GenerateDataKey and kms:Decrypt on it). The OSS-managed default key gets no grant: OSS
    uses it on the requester's behalf (not re-checked against a live account)."""
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Action": ["oss:PutObject"],
            "Resource": [f"acs:oss:*:*:{bucket_name}/*"],
        }
    ]
    if kms_key_id:
        statements.append(
            {
                "Effect": "Allow",
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": [f"acs:kms:{region}:*:key/{kms_key_id}"],
            }
        )
    return json.dumps({"Version": "1", "Statement": statements}, separators=(",", ":"))


def rrsa_trust_policy(r: RrsaSettings, namespace: str) -> str:
    """Trust policy of the RRSA role: only tokens of this cluster's OIDC provider (issuer), for STS,
    naming this namespace's ServiceAccount may assume it (ACK docs, "Use RRSA to authorize
    different pods to access different cloud services": Federated principal = the provider ARN;
    StringEquals on oidc:iss, oidc:aud = sts.aliyuncs.com and
    oidc:sub = system:serviceaccount:<namespace>:<name>)."""
    document = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Federated": [r.oidc_provider_arn]},
                "Condition": {
                    "StringEquals": {
                        "oidc:iss": [r.oidc_issuer_url],
                        "oidc:aud": [OIDC_AUDIENCE],
                        "oidc:sub": [f"system:serviceaccount:{namespace}:{r.service_account_name}"],
                    }
                },
            }
        ],
    }
    return json.dumps(document, separators=(",", ":"))


def _oidc_provider_arn(value: Any) -> str:
    if not (isinstance(value, str) and _OIDC_PROVIDER_ARN.match(value)):
        raise ValueError(
            f"credentials.oidc_provider_arn: {value!r} is not a RAM OIDC provider ARN "
            "(acs:ram::<account id>:oidc-provider/ack-rrsa-<cluster id>)"
        )
    return value


def _oidc_issuer_url(value: Any) -> str:
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme != "https" or not parts.hostname:
        raise ValueError(
            f"credentials.oidc_issuer_url: {value!r} is not the cluster's https issuer URL"
        )
    return value


def _service_account(value: Any) -> str:
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise ValueError(
            f"credentials.service_account_name: {value!r} is not a ServiceAccount name "
            "(a DNS-1035 label)"
        )
    return value


def _kms_key_for(encryption: str, value: Any) -> str | None:
    """The KMS key id for `encryption`, None for no key; ValueError when a key is given with
    another encryption or is not a key id."""
    if value is None:
        return None
    if encryption != "KMS":
        raise ValueError("kms_key_id: needs encryption KMS")
    return _kms_key_id(value)


def _kms_key_id(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9-]{1,128}", value):
        raise ValueError(f"kms_key_id: {value!r} is not a KMS key id")
    return value


def _access_key_id(value: Any) -> str:
    if not isinstance(value, str) or not _ACCESS_KEY_ID.match(value):
        raise ValueError("access_key_id: is not an AccessKey ID (letters and digits)")
    return value


def _store(value: Any) -> str:
    if value not in STORE_MODES:
        raise ValueError(f"store: {value!r} must be one of {', '.join(STORE_MODES)}")
    return value


def _key_prefix(value: Any) -> str:
    if not isinstance(value, str) or value.startswith(("/", "\\")) or len(value) > 512:
        raise ValueError(
            "key_prefix: must be a string of at most 512 characters not starting with /"
        )
    return value


def _credentials(
    name: str, args: Mapping[str, Any], defaults: dict[str, str]
) -> tuple[str, RrsaSettings | None]:
    value = args.get("credentials") or {}
    mode = setting(value, "mode", "accessKey")
    if mode not in CREDENTIAL_MODES:
        raise ValueError(f"credentials.mode: {mode!r} must be one of {', '.join(CREDENTIAL_MODES)}")
    fields = {
        "accessKey": {"mode"},
        "rrsa": {
            "mode",
            "oidc_provider_arn",
            "oidc_issuer_url",
            "service_account_name",
            "ram_role_name",
        },
    }[mode]
    unknown = sorted(set(value) - fields)
    if unknown:
        raise ValueError(f"credentials.{unknown[0]}: unknown with mode {mode}")
    if mode == "accessKey":
        return mode, None
    for field in ("access_key_id", "ram_user_name"):
        if field in args:
            raise ValueError(f"{field}: applies only to credentials mode accessKey")
    # Both may be Outputs of a cluster declared in the same program (rrsa_metadata of
    # alicloud.cs.ManagedKubernetes): checked when they resolve, with the same messages.
    provider = value.get("oidc_provider_arn")
    if provider is None or provider == "":
        raise ValueError("credentials.oidc_provider_arn: is required with mode rrsa")
    provider = checked(provider, _oidc_provider_arn)
    issuer = value.get("oidc_issuer_url")
    if issuer is None or issuer == "":
        raise ValueError("credentials.oidc_issuer_url: is required with mode rrsa")
    issuer = checked(issuer, _oidc_issuer_url)
    account = checked(setting(value, "service_account_name", name), _service_account)
    role = value.get("ram_role_name")
    role = defaults["ram_role_name"] if role is None else _ram_name("ram_role_name", role)
    return mode, RrsaSettings(provider, issuer, account, role)


def oss_target_settings(
    name: str, args: Mapping[str, Any], *, project: str, stack: str
) -> OssTargetSettings:
    """Applies the rules to AlibabaOssTargetArgs already checked against their schema
    (components.schema); a ValueError names the bad or conflicting field. A field given as an
    Output is checked when it resolves, with the same message. `project` and `stack` go into the
    default RAM names (unique per account)."""
    region = checked(args["region"], lambda r: check_region("Alibaba Cloud", r))
    bucket = validate_bucket_name(args["bucket_name"])
    create_bucket = setting(args, "create_bucket", True)
    if not create_bucket:
        for field in (
            "encryption",
            "kms_key_id",
            "versioning",
            "expiration_days",
            "protect",
            "force_destroy",
        ):
            if field in args:
                raise ValueError(f"{field}: applies only to a bucket this component creates")
    encryption = setting(args, "encryption", "AES256")
    if encryption not in ENCRYPTIONS:
        raise ValueError(f"encryption: {encryption!r} must be one of {', '.join(ENCRYPTIONS)}")
    kms_key_id = args.get("kms_key_id")
    if kms_key_id is not None:
        # An Output may resolve to None (an unset config value): no key, as a plain None.
        kms_key_id = checked(kms_key_id, lambda key: _kms_key_for(encryption, key))
    expiration_days = args.get("expiration_days")
    if expiration_days is not None and not 1 <= expiration_days <= 36500:
        raise ValueError(
            f"expiration_days: {expiration_days!r} must be a whole number of days >= 1"
        )
    defaults = {
        field: default_ram_name(field, project, stack, name, suffix)
        for field, suffix in (
            ("ram_user_name", "oss-writer"),
            ("ram_policy_name", "oss-put-only"),
            ("ram_role_name", "oss-writer"),
        )
    }
    mode, rrsa = _credentials(name, args, defaults)
    has_id, has_secret = "access_key_id" in args, "access_key_secret" in args
    if has_id != has_secret:
        missing = "access_key_secret" if has_id else "access_key_id"
        raise ValueError(f"{missing}: an existing key pair needs both access_key_id and the secret")
    if has_id:
        checked(args["access_key_id"], _access_key_id)
        if isinstance(args["access_key_secret"], str):
            raise ValueError("access_key_secret: pass it as a secret (pulumi.Output.secret)")
        for field in ("ram_user_name", "ram_policy_name"):
            if field in args:
                raise ValueError(f"{field}: conflicts with a supplied access key")
    ram_user = (
        _ram_name("ram_user_name", args["ram_user_name"])
        if "ram_user_name" in args
        else defaults["ram_user_name"]
    )
    ram_policy = (
        _ram_name("ram_policy_name", args["ram_policy_name"])
        if "ram_policy_name" in args
        else defaults["ram_policy_name"]
    )
    store = checked(setting(args, "store", "data"), _store)
    key_prefix = checked(setting(args, "key_prefix", ""), _key_prefix)
    batch = _batch(args.get("batch"))
    # Batching is on when the block sets maxEvents (at least 1); the template is checked for
    # the mode it will run in, as the runtime does at start-up.
    max_events = (batch or {}).get("max_events", 0)
    key_template = args.get("key_template")
    if key_template is not None:
        key_template = derived(
            lambda template, prefix, events: _key_template(
                template, prefix if isinstance(prefix, str) else "", batched=bool(events)
            ),
            key_template,
            key_prefix,
            max_events,
        )
    return OssTargetSettings(
        region=region,
        bucket_name=bucket,
        create_bucket=create_bucket,
        encryption=encryption,
        kms_key_id=kms_key_id,
        versioning=setting(args, "versioning", False),
        expiration_days=expiration_days,
        protect=setting(args, "protect", False),
        force_destroy=setting(args, "force_destroy", False),
        supplied_key=has_id,
        ram_user_name=ram_user,
        ram_policy_name=ram_policy,
        endpoint=derived(oss_endpoint, region, setting(args, "use_internal_endpoint", False)),
        store=store,
        key_prefix=key_prefix,
        rrsa=rrsa if mode == "rrsa" else None,
        internal_endpoint=setting(args, "use_internal_endpoint", False),
        key_template=key_template,
        batch=batch,
    )


def _key_template(template: Any, key_prefix: str, *, batched: bool) -> str:
    """The runtime's own template parser and mode check (`batched`: rolled objects), so a
    template the component accepts never makes the pod exit 2 at start-up. None (an Output of an
    unset value) is "": the runtime reads an empty OSS_KEY_TEMPLATE as unset and uses its default
    template."""
    if template is None:
        return ""
    if not isinstance(template, str):
        raise ValueError("key_template: must be a string")
    try:
        check_mode(parse_template(template, key_prefix), key_prefix, batched=batched)
    except InvalidTemplate as error:
        raise ValueError(f"key_template: {error}") from None
    return template


def _batch(value: Any) -> dict[str, Any] | None:
    """The batch block, each field checked with the runtime's bounds (so the pod never exits 2
    on them); Outputs when they resolve. Unknown and missing fields are the schema's."""
    if value is None:
        return None
    checked_fields: dict[str, Any] = {}
    for field, (low, high, whole) in _BATCH_BOUNDS.items():
        if field in value:

            def rule(number: Any, field: str = field, low=low, high=high, whole=whole) -> Any:
                if (
                    isinstance(number, bool)
                    or not isinstance(number, (int, float))
                    or (whole and number != int(number))
                    or not low <= number <= high
                ):
                    kind = "a whole number" if whole else "a number"
                    raise ValueError(
                        f"batch.{field}: {number!r} must be {kind} from {low} to {high}"
                    )
                return int(number) if whole else number

            checked_fields[field] = checked(value[field], rule)
    if "compression" in value:

        def compression(name: Any) -> str:
            if name not in COMPRESSIONS:
                raise ValueError(
                    f"batch.compression: {name!r} must be one of {', '.join(COMPRESSIONS)}"
                )
            return name

        checked_fields["compression"] = checked(value["compression"], compression)
    return checked_fields


def _batch_fits(memory_limit: str, max_events: int, max_bytes: int | None) -> int:
    """`max_events` when the runtime would start with these BATCH_* settings under a pod
    limited to `memory_limit`: the runtime's own rule (runtime/alibaba_oss_target/settings.py,
    `batch_limits`: BATCH_MAX_BYTES, or its default, at most the in-flight budget
    `in_flight_budget(limit)`). Else a ValueError naming batch.max_bytes and the maximum."""
    env = {"BATCH_MAX_EVENTS": str(max_events)}
    if max_bytes is not None:
        env["BATCH_MAX_BYTES"] = str(max_bytes)
    limit = memory_bytes(memory_limit)
    budget = in_flight_budget(limit)
    server = dataclasses.replace(ServerSettings(), memory_limit_bytes=limit, in_flight_bytes=budget)
    try:
        batch_limits(EnvReader(env), server)
    except SettingError as error:
        given = "its default" if max_bytes is None else str(max_bytes)
        raise ValueError(
            f"batch.max_bytes: {given} is above the {budget}-byte in-flight budget of a "
            f"{memory_limit!r} memory limit; it must be at most {budget} (or raise "
            f"runtime.memory_limit), else the runtime exits at start-up ({error})"
        ) from None
    return max_events


def batch_within_memory(s: OssTargetSettings, memory_limit: Any) -> OssTargetSettings:
    """`s` with its batch's max_events checked, together with max_bytes, against the pod's
    `memory_limit` (a Kubernetes quantity, or an Output of one): now when all are known, else
    when they resolve (the deployment then fails with the same message)."""
    if not s.batch or "max_events" not in s.batch:
        return s
    events = derived(_batch_fits, memory_limit, s.batch["max_events"], s.batch.get("max_bytes"))
    return dataclasses.replace(s, batch={**s.batch, "max_events": events})


def runtime_env(s: OssTargetSettings) -> dict[str, Any]:
    """Plain settings of `python -m runtime.alibaba_oss_target` (credentials come from a Secret);
    each value a string or an Output of one."""
    env = {
        "OSS_ENDPOINT": s.endpoint,
        "OSS_BUCKET": s.bucket_name,
        "OSS_REGION": s.region,
        "STORE": s.store,
    }
    if is_output(s.key_prefix) or s.key_prefix:
        env["OSS_KEY_PREFIX"] = s.key_prefix
    if s.rrsa is not None:
        # The names alibabacloud-credentials reads (utils/auth_util.py) for the STS host of the
        # OIDC exchange: `sts-vpc.<region>.aliyuncs.com` with the VPC endpoint, else
        # `sts.<region>.aliyuncs.com`. Without them it calls the public sts.aliyuncs.com, which a
        # cluster without internet egress cannot reach.
        env["ALIBABA_CLOUD_STS_REGION"] = s.region
        env["ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"] = derived(
            lambda internal: "true" if internal else "false", s.internal_endpoint
        )
    if s.key_template is not None:
        env["OSS_KEY_TEMPLATE"] = s.key_template
    if s.batch is not None:
        for field, variable in (
            ("max_events", "BATCH_MAX_EVENTS"),
            ("max_bytes", "BATCH_MAX_BYTES"),
            ("max_seconds", "BATCH_MAX_SECONDS"),
            ("compression", "BATCH_COMPRESSION"),
        ):
            if field in s.batch:
                env[variable] = derived(str, s.batch[field])
    return env
