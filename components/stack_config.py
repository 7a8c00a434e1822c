"""The typed stack config of this project's program: Pulumi config (camelCase) -> component args.

Shared by `__main__.py` and `python -m components.check`. Object keys are checked strictly (an
unknown key is an error naming its path), then the components' own rules run, so a bad stack file
fails before any resource is declared, with the path as written in the stack file.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import container_spec, cos_source_spec, oss_target_spec

OBJECT_KEYS = ("kubernetes", "ossTarget", "cosSource")
SECRET_KEYS = ("ossTargetAccessKeySecret", "cosSourceRelaySigningSecret")
DEFAULT_NAMESPACE = "cloudevents"

OSS_TARGET_NAME = "oss-target"
COS_SOURCE_NAME = "cos-source"

_KUBERNETES = {"context", "kubeconfig", "namespace", "createNamespace"}
_RUNTIME = {
    "image",
    "imagePullPolicy",
    "minReplicas",
    "maxReplicas",
    "targetCpuUtilization",
    "cpuRequest",
    "cpuLimit",
    "memoryRequest",
    "memoryLimit",
    "drainTimeoutSeconds",
    "logLevel",
    "mode",
    "runAsUser",
}
_OSS_TARGET = {
    "region",
    "bucketName",
    "createBucket",
    "encryption",
    "kmsKeyId",
    "versioning",
    "expirationDays",
    "protect",
    "accessKeyId",
    "ramUserName",
    "ramPolicyName",
    "credentials",
    "forceDestroy",
    "useInternalEndpoint",
    "store",
    "keyPrefix",
    "runtime",
}
_COS_SOURCE = {
    "region",
    "bucketName",
    "appId",
    "createBucket",
    "protect",
    "versioning",
    "forceDestroy",
    "function",
    "debug",
    "events",
    "prefix",
    "suffix",
    "sinkUrl",
    "gateway",
    "relay",
    "deliveryTimeoutSeconds",
    "deliveryRetryBudgetSeconds",
}
_FUNCTION = {"name": "function_name", "namespace": "function_namespace", "vpc": "function_vpc"}
_FUNCTION_KEYS = {
    "name",
    "namespace",
    "memoryMb",
    "timeoutSeconds",
    "publicNetwork",
    "vpc",
    "retryAttempts",
    "maxEventAgeSeconds",
}
_VPC = {"vpcId", "subnetId"}
_CREDENTIALS = {"mode", "oidcProviderArn", "oidcIssuerUrl", "serviceAccountName", "ramRoleName"}
_GATEWAY = {"target", "eventbus", "api", "namespace"}
_RELAY = {"sinkUrl", "publicUrl", "runtime"}
# Component argument -> where it is written in the stack file, when not the plain camelCase.
_COS_PATHS = {
    "function_name": "function.name",
    "function_namespace": "function.namespace",
    "memory_mb": "function.memoryMb",
    "timeout_seconds": "function.timeoutSeconds",
    "public_network": "function.publicNetwork",
    "function_vpc": "function.vpc",
    "function_vpc.vpc_id": "function.vpc.vpcId",
    "function_vpc.subnet_id": "function.vpc.subnetId",
    "retry_attempts": "function.retryAttempts",
    "max_event_age_seconds": "function.maxEventAgeSeconds",
}
NOTHING_DEPLOYED = (
    "this stack deploys nothing: both ossTarget and cosSource are absent or empty; set at least "
    "one (README.md, Configuration)"
)


@dataclass(frozen=True)
class KubernetesConfig:
    context: str | None = None
    kubeconfig: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    create_namespace: bool = True


@dataclass(frozen=True)
class StackConfig:
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    oss_target: dict[str, Any] | None = None
    """AlibabaOssTargetArgs, or None when the ossTarget block is absent (not deployed)."""
    cos_source: dict[str, Any] | None = None
    """TencentCosSourceArgs, or None when the cosSource block is absent (not deployed)."""


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{path}: must be an object (key: value lines), not {type(value).__name__}"
        )
    return value


def _known(path: str, value: Any, allowed: set[str]) -> Mapping[str, Any]:
    value = _mapping(path, value)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ValueError(f"{path}.{unknown[0]}: unknown key; known: {', '.join(sorted(allowed))}")
    return value


def _converted(path: str, value: Any, allowed: set[str]) -> dict[str, Any]:
    return {snake(k): v for k, v in _known(path, value, allowed).items()}


def _runtime(path: str, value: Any, namespace: str) -> dict[str, Any]:
    return {**_converted(path, value, _RUNTIME), "namespace": namespace}


def _kubernetes(value: Any) -> KubernetesConfig:
    block = _known("kubernetes", value or {}, _KUBERNETES)
    for key in ("context", "kubeconfig"):
        if key in block and not isinstance(block[key], str):
            raise ValueError(f"kubernetes.{key}: must be a string")
    namespace = block.get("namespace", DEFAULT_NAMESPACE)
    try:
        container_spec.dns_label("namespace", namespace)
    except ValueError as error:
        raise ValueError(f"kubernetes.{error}") from None
    create = block.get("createNamespace", True)
    if not isinstance(create, bool):
        raise ValueError("kubernetes.createNamespace: must be true or false")
    return KubernetesConfig(block.get("context"), block.get("kubeconfig"), namespace, create)


def _oss_target(value: Mapping[str, Any], secret: Any, namespace: str) -> dict[str, Any]:
    args = _converted("ossTarget", value, _OSS_TARGET)
    if "credentials" in args:
        args["credentials"] = _converted("ossTarget.credentials", args["credentials"], _CREDENTIALS)
    args["runtime"] = _runtime("ossTarget.runtime", value.get("runtime") or {}, namespace)
    if secret is not None:
        if "access_key_id" not in args:
            raise ValueError(
                "ossTargetAccessKeySecret: is set, but ossTarget.accessKeyId is not; set both or "
                "neither (then a put-only RAM user and key are created)"
            )
        args["access_key_secret"] = secret
    elif "access_key_id" in args:
        raise ValueError(
            "ossTargetAccessKeySecret: required with ossTarget.accessKeyId; set it with "
            "`pulumi config set --secret ossTargetAccessKeySecret <secret>`"
        )
    return args


def _cos_source(value: Mapping[str, Any], secret: Any, namespace: str) -> dict[str, Any]:
    args = _converted("cosSource", value, _COS_SOURCE)
    function = _known("cosSource.function", args.pop("function", None) or {}, _FUNCTION_KEYS)
    for key, arg in function.items():
        args[_FUNCTION.get(key, snake(key))] = arg
    if "function_vpc" in args:
        args["function_vpc"] = _converted("cosSource.function.vpc", args["function_vpc"], _VPC)
    if "gateway" in args:
        args["gateway"] = _converted("cosSource.gateway", args["gateway"], _GATEWAY)
    if "relay" in args:
        relay = _converted("cosSource.relay", args["relay"], _RELAY)
        relay["runtime"] = _runtime(
            "cosSource.relay.runtime", relay.get("runtime") or {}, namespace
        )
        if secret is not None:
            relay["signing_secret"] = secret
        args["relay"] = relay
    elif secret is not None:
        raise ValueError("cosSourceRelaySigningSecret: is set, but cosSource has no relay")
    return args


def _stack_path(block: str, error: ValueError, paths: Mapping[str, str]) -> ValueError:
    """The component's error, with its field written as in the stack file."""
    field_path, _, message = str(error).partition(": ")
    if field_path in paths:
        written = paths[field_path]
    else:
        written = ".".join(camel(part) for part in field_path.split("."))
    return ValueError(f"{block}.{written}: {message}")


def deploys_nothing(config: StackConfig) -> bool:
    """True when neither connector is configured: `pulumi up` would create only providers."""
    return config.oss_target is None and config.cos_source is None


def parse_stack_config(
    values: Mapping[str, Any],
    secrets: Mapping[str, Any] | None = None,
    *,
    project: str = "cloudevents-connectors",
    stack: str = "dev",
) -> StackConfig:
    """Validates the object keys (`values`: key without project prefix -> value) and the set
    secrets (`secrets`: key -> Output or placeholder, absent when unset) into component args.
    `project` and `stack` only shape the default names the rules check (RAM names)."""
    secrets = {k: v for k, v in (secrets or {}).items() if v is not None}
    kubernetes = _kubernetes(values.get("kubernetes"))
    oss_target = cos_source = None
    if values.get("ossTarget"):
        oss_target = _oss_target(
            _mapping("ossTarget", values["ossTarget"]),
            secrets.get("ossTargetAccessKeySecret"),
            kubernetes.namespace,
        )
        try:
            oss_target_spec.oss_target_settings(
                OSS_TARGET_NAME, oss_target, project=project, stack=stack
            )
            container_spec.validate_runtime_options(
                "runtime",
                oss_target["runtime"],
                OSS_TARGET_NAME,
                "alibaba-oss-target",
                oss_target_spec.DEFAULT_IMAGE,
            )
        except ValueError as error:
            raise _stack_path("ossTarget", error, {}) from None
    elif "ossTargetAccessKeySecret" in secrets:
        raise ValueError("ossTargetAccessKeySecret: is set, but there is no ossTarget block")
    if values.get("cosSource"):
        cos_source = _cos_source(
            _mapping("cosSource", values["cosSource"]),
            secrets.get("cosSourceRelaySigningSecret"),
            kubernetes.namespace,
        )
        try:
            cos_source_spec.cos_source_settings(COS_SOURCE_NAME, cos_source)
        except ValueError as error:
            raise _stack_path("cosSource", error, _COS_PATHS) from None
    elif "cosSourceRelaySigningSecret" in secrets:
        raise ValueError("cosSourceRelaySigningSecret: is set, but there is no cosSource block")
    return StackConfig(kubernetes, oss_target, cos_source)


def read_stack_config(config: Any) -> StackConfig:
    """The StackConfig of the running program, from a `pulumi.Config()` of this project."""
    import pulumi

    values = {key: config.get_object(key) for key in OBJECT_KEYS}
    secrets = {}
    for key in SECRET_KEYS:
        # Declared with default "", so an unset secret reads as empty; peek without unwrapping.
        if pulumi.runtime.get_config(config.full_key(key)):
            secrets[key] = config.require_secret(key)
    config = parse_stack_config(
        values, secrets, project=pulumi.get_project(), stack=pulumi.get_stack()
    )
    if deploys_nothing(config):
        pulumi.log.warn(NOTHING_DEPLOYED)
    return config
