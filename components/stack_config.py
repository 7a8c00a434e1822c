"""The typed stack config of this project's program: Pulumi config (camelCase) -> component args.

Shared by `__main__.py` and `python -m components.check`. Each block is checked against its
component's own schema (components.schema: the Args TypedDict with camelCase names, unknown keys
and wrong types refused), then the components' own rules run, so a bad stack file fails before any
resource is declared, with the path as written in the stack file.
"""

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import container_spec, cos_source_spec, oss_target_spec
from .alibaba_oss_target import AlibabaOssTargetArgs
from .schema import restate, validate
from .tencent_cos_source import TencentCosSourceArgs

OBJECT_KEYS = ("kubernetes", "ossTarget", "cosSource")
SECRET_KEYS = (
    "ossTargetAccessKeySecret",
    "cosSourceRelaySigningSecret",
    "ossTargetRegistryPassword",
    "cosSourceRelayRegistryPassword",
)
NAMESPACE_PREFIX = "cloudevents"

OSS_TARGET_NAME = "oss-target"
COS_SOURCE_NAME = "cos-source"
NOTHING_DEPLOYED = (
    "this stack deploys nothing: both ossTarget and cosSource are absent or empty; set at least "
    "one (README.md, Configuration)"
)


@dataclass(frozen=True)
class KubernetesConfig:
    """The `kubernetes` block: the cluster both connectors' runtimes run in."""

    context: str | None = None
    """Kubeconfig context (default: the current one)."""
    kubeconfig: str | None = None
    """Kubeconfig path or contents (default: $KUBECONFIG). Contents are passed on as a secret
    Output (set them with `pulumi config set --secret --path kubernetes.kubeconfig`)."""
    namespace: str | None = None
    """Namespace of every runtime object (default `cloudevents-<stack>`: with createNamespace,
    two stacks on one cluster would otherwise both own, and delete, the same namespace)."""
    create_namespace: bool = True
    """Create the namespace (default true); false: it must exist."""


@dataclass(frozen=True)
class StackConfig:
    kubernetes: KubernetesConfig = field(default_factory=KubernetesConfig)
    oss_target: dict[str, Any] | None = None
    """AlibabaOssTargetArgs, or None when the ossTarget block is absent (not deployed)."""
    cos_source: dict[str, Any] | None = None
    """TencentCosSourceArgs, or None when the cosSource block is absent (not deployed)."""


def _mapping(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"{path}: must be an object (key: value lines), not {type(value).__name__}"
        )
    return value


def default_namespace(stack: str) -> str:
    """`cloudevents-<stack>` as a DNS-1035 label (lowercase; other characters become '-'; over 63
    characters, the start plus a hash of the stack)."""
    full = f"{NAMESPACE_PREFIX}-{stack}"
    cleaned = "".join(c if c.isascii() and c.isalnum() else "-" for c in full.lower())
    if len(cleaned) > 63:
        cleaned = f"{cleaned[:54].rstrip('-')}-{hashlib.sha256(full.encode()).hexdigest()[:8]}"
    return cleaned.rstrip("-")


def _kubernetes(value: Any, stack: str) -> KubernetesConfig:
    config = KubernetesConfig(**validate(KubernetesConfig, value or {}, stack_path="kubernetes"))
    if config.namespace is None:
        config = dataclasses.replace(config, namespace=default_namespace(stack))
    try:
        if config.create_namespace:
            container_spec.created_namespace("namespace", config.namespace)
        else:
            container_spec.dns_label("namespace", config.namespace)
    except ValueError as error:
        raise restate(error, "kubernetes") from None
    return config


def _no_stack_key(block: dict[str, Any], key: str, path: str, why: str) -> None:
    if key in block:
        raise ValueError(f"{path}: {why}")


def _runtime(path: str, value: Any, namespace: str, password_key: str, password: Any) -> dict:
    """A runtime block (already checked against its schema) with the stack's namespace; the
    registry password of `runtime.build` comes from its own secret key, never the stack file."""
    runtime = dict(value or {})
    _no_stack_key(runtime, "namespace", f"{path}.namespace", "set kubernetes.namespace instead")
    build = runtime.get("build")
    if build is not None and "password" in build:
        raise ValueError(
            f"{path}.build.password: not in the stack file; set it with "
            f"`pulumi config set --secret {password_key} <password>`"
        )
    if password is not None:
        if build is None:
            raise ValueError(f"{password_key}: is set, but {path}.build is not")
        runtime["build"] = {**build, "password": password}
    elif build is not None and "username" in build:
        raise ValueError(
            f"{password_key}: required with {path}.build.username; set it with "
            f"`pulumi config set --secret {password_key} <password>`"
        )
    return {**runtime, "namespace": namespace}


def _oss_target(
    value: Any, secret: Any, namespace: str, registry_password: Any = None
) -> dict[str, Any]:
    args = validate(AlibabaOssTargetArgs, _mapping("ossTarget", value), stack_path="ossTarget")
    _no_stack_key(
        args,
        "access_key_secret",
        "ossTarget.accessKeySecret",
        "a secret never goes in the stack file; set it with "
        "`pulumi config set --secret ossTargetAccessKeySecret <secret>`",
    )
    args["runtime"] = _runtime(
        "ossTarget.runtime",
        args.get("runtime"),
        namespace,
        "ossTargetRegistryPassword",
        registry_password,
    )
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


def _cos_source(
    value: Any, secret: Any, namespace: str, registry_password: Any = None
) -> dict[str, Any]:
    args = validate(TencentCosSourceArgs, _mapping("cosSource", value), stack_path="cosSource")
    if "relay" in args:
        relay = dict(args["relay"])
        _no_stack_key(
            relay,
            "signing_secret",
            "cosSource.relay.signingSecret",
            "a secret never goes in the stack file; set it with "
            "`pulumi config set --secret cosSourceRelaySigningSecret <secret>`",
        )
        relay["runtime"] = _runtime(
            "cosSource.relay.runtime",
            relay.get("runtime"),
            namespace,
            "cosSourceRelayRegistryPassword",
            registry_password,
        )
        if secret is not None:
            relay["signing_secret"] = secret
        args["relay"] = relay
    else:
        for key, given in (
            ("cosSourceRelaySigningSecret", secret),
            ("cosSourceRelayRegistryPassword", registry_password),
        ):
            if given is not None:
                raise ValueError(f"{key}: is set, but cosSource has no relay")
    return args


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
    `project` and `stack` shape the default names (RAM names, SCF function, namespace)."""
    secrets = {k: v for k, v in (secrets or {}).items() if v is not None}
    kubernetes = _kubernetes(values.get("kubernetes"), stack)
    oss_target = cos_source = None
    if values.get("ossTarget"):
        oss_target = _oss_target(
            values["ossTarget"],
            secrets.get("ossTargetAccessKeySecret"),
            kubernetes.namespace,
            secrets.get("ossTargetRegistryPassword"),
        )
        try:
            settings = oss_target_spec.oss_target_settings(
                OSS_TARGET_NAME, oss_target, project=project, stack=stack
            )
            container_spec.validate_runtime_options(
                "runtime",
                oss_target["runtime"],
                OSS_TARGET_NAME,
                "alibaba-oss-target",
                oss_target_spec.DEFAULT_IMAGE,
            )
            oss_target_spec.batch_within_memory(
                settings,
                oss_target["runtime"].get("memory_limit", container_spec.DEFAULT_MEMORY_LIMIT),
            )
        except ValueError as error:
            raise restate(error, "ossTarget") from None
    else:
        for key in ("ossTargetAccessKeySecret", "ossTargetRegistryPassword"):
            if key in secrets:
                raise ValueError(f"{key}: is set, but there is no ossTarget block")
    if values.get("cosSource"):
        cos_source = _cos_source(
            values["cosSource"],
            secrets.get("cosSourceRelaySigningSecret"),
            kubernetes.namespace,
            secrets.get("cosSourceRelayRegistryPassword"),
        )
        try:
            cos_source_spec.cos_source_settings(
                COS_SOURCE_NAME, cos_source, project=project, stack=stack
            )
        except ValueError as error:
            raise restate(error, "cosSource") from None
    else:
        for key in ("cosSourceRelaySigningSecret", "cosSourceRelayRegistryPassword"):
            if key in secrets:
                raise ValueError(f"{key}: is set, but there is no cosSource block")
    return StackConfig(kubernetes, oss_target, cos_source)


def read_stack_config(config: Any) -> StackConfig:
    """The StackConfig of the running program, from a `pulumi.Config()` of this project."""
    import pulumi

    values = {key: config.get_object(key) for key in OBJECT_KEYS}
    kubernetes_is_secret = pulumi.runtime.is_config_secret(config.full_key("kubernetes"))
    for key in OBJECT_KEYS:
        if key != "kubernetes" and pulumi.runtime.is_config_secret(config.full_key(key)):
            raise ValueError(
                f"{key}: holds an encrypted value (`pulumi config set --secret --path`); secrets "
                f"have their own keys ({', '.join(SECRET_KEYS)}; README.md, Secrets)"
            )
    secrets = {}
    for key in SECRET_KEYS:
        # Declared with default "", so an unset secret reads as empty; peek without unwrapping.
        if pulumi.runtime.get_config(config.full_key(key)):
            secrets[key] = config.require_secret(key)
    config = parse_stack_config(
        values, secrets, project=pulumi.get_project(), stack=pulumi.get_stack()
    )
    kubeconfig = config.kubernetes.kubeconfig
    if kubeconfig is not None and is_kubeconfig_contents(kubeconfig):
        if not kubernetes_is_secret:
            pulumi.log.warn(PLAIN_KUBECONFIG)
        # The cluster's credentials: secret in the state whichever way they were given.
        kubernetes = dataclasses.replace(
            config.kubernetes, kubeconfig=pulumi.Output.secret(kubeconfig)
        )
        config = dataclasses.replace(config, kubernetes=kubernetes)
    if deploys_nothing(config):
        pulumi.log.warn(NOTHING_DEPLOYED)
    return config


PLAIN_KUBECONFIG = (
    "kubernetes.kubeconfig holds kubeconfig contents in plain text in the stack file; the state "
    "keeps it secret, but set it with `pulumi config set --secret --path kubernetes.kubeconfig "
    '"$(cat <file>)"` (or give a path) so the file does not hold the cluster\'s credentials'
)


def is_kubeconfig_contents(value: str) -> bool:
    """True for kubeconfig contents (YAML or JSON text), False for a path: the Kubernetes
    provider's `kubeconfig` takes either."""
    return "\n" in value or value.lstrip().startswith(("apiVersion", "{", "clusters:", "kind:"))
