"""Pure builders for the Kubernetes objects of a ContainerRuntime: settings in, manifests out.

Every function returns plain dicts in manifest form (camelCase), so the same output is what the
component passes to pulumi_kubernetes and what the tests validate with kubernetes-validate. A
setting given as an Output stays one inside the dicts (checked, and derived values computed, when
it resolves); plain settings give plain dicts.
"""

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import image_build
from .schema import checked, derived, matching, setting, whole

# The runtimes' own start-up rule (stdlib only, importable without the runtimes' dependencies).
if __package__.count("."):  # installed: cloudevents_connectors.components
    from ..runtime.receiver.settings import (
        BODY_MEMORY_FACTOR,
        MIB,
        RESERVED_MEMORY_BYTES,
        ServerSettings,
        minimum_memory_limit,
    )
    from ..runtime.relay.settings import MAX_BODY_BYTES as RELAY_MAX_BODY_BYTES
else:  # the repository: `components` and `runtime` are top-level siblings
    from runtime.receiver.settings import (
        BODY_MEMORY_FACTOR,
        MIB,
        RESERVED_MEMORY_BYTES,
        ServerSettings,
        minimum_memory_limit,
    )
    from runtime.relay.settings import MAX_BODY_BYTES as RELAY_MAX_BODY_BYTES

DEFAULT_DRAIN_TIMEOUT_SECONDS = 20
DEFAULT_MEMORY_LIMIT = "256Mi"
# The pod must outlive the runtime's drain, or the kubelet kills in-flight deliveries.
GRACE_MARGIN_SECONDS = 10
CONTAINER_PORT = 8080
SERVICE_PORT = 80
DEFAULT_RUN_AS_USER = 10001
PULL_POLICIES = ("Always", "IfNotPresent", "Never")
MODES = ("deployment", "knative")
SERVICE_TYPES = ("ClusterIP", "LoadBalancer")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$")
_MEMORY = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_IMAGE = re.compile(r"^[^\s@]+(@sha256:[0-9a-f]{64})?$")
# Kubernetes quantity suffixes (k8s.io/apimachinery resource.Quantity) -> multiplier in bytes.
_MEMORY_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
# Environment names Knative Serving reserves (k8s_validation.go `reservedEnvVars`); it sets them.
KNATIVE_RESERVED_ENV = ("PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION")
# Where the projected RRSA token is mounted: the path ACK's pod-identity webhook uses too.
OIDC_TOKEN_DIR = "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens"  # noqa: S105 - a path
OIDC_TOKEN_FILE = f"{OIDC_TOKEN_DIR}/token"
# Audience of the token AssumeRoleWithOIDC accepts (Alibaba RRSA docs).
OIDC_AUDIENCE = "sts.aliyuncs.com"
OIDC_TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class SecretRef:
    """An environment variable read from a key of a Kubernetes Secret."""

    env: str
    secret_name: str
    key: str


@dataclass(frozen=True)
class PodIdentity:
    """RRSA: the pod runs as `service_account_name` and exchanges a projected OIDC token (audience
    sts.aliyuncs.com) for the RAM role `role_arn` through `oidc_provider_arn`."""

    service_account_name: str
    role_arn: Any  # str, or an Output of one
    oidc_provider_arn: Any  # str, or an Output of one


@dataclass(frozen=True)
class RuntimeSettings:
    """Validated, plain settings of one ContainerRuntime (see ContainerRuntimeArgs for meanings)."""

    app_name: str
    component: str
    image: Any  # str, or an Output of one
    image_pull_policy: str
    command: tuple[str, ...]
    env: tuple[tuple[str, Any], ...]
    secret_env: tuple[SecretRef, ...]
    namespace: str
    min_replicas: int
    max_replicas: int
    target_cpu_utilization: int
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    drain_timeout_seconds: int
    log_level: str
    mode: str
    service_type: str
    run_as_user: int
    version: str
    pod_identity: PodIdentity | None = None
    build: image_build.BuildSettings | None = None
    """`runtime.build`: the image is built and pushed, then `image` is set to its digest."""
    image_pull_secret: Any = None
    """Name of the kubernetes.io/dockerconfigjson Secret the kubelet pulls `image` with."""

    @property
    def termination_grace_period_seconds(self) -> Any:
        return derived(lambda seconds: seconds + GRACE_MARGIN_SECONDS, self.drain_timeout_seconds)


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"{field}: {message}")


def dns_label(field: str, value: Any) -> Any:
    """`value` when it is a DNS-1035 label (an Output: checked when it resolves)."""

    def rule(v: Any) -> str:
        if not isinstance(v, str) or not _DNS_1035_LABEL.match(v):
            raise _fail(
                field,
                f"{v!r} is not a DNS-1035 label (lowercase letters, digits and '-', starting "
                "with a letter, at most 63 characters)",
            )
        return v

    return checked(value, rule)


# Namespaces Kubernetes itself creates and relies on: a stack that created (owned) one would delete
# it, and everything in it, on `pulumi destroy`.
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def created_namespace(field: str, value: Any) -> Any:
    """`value` when it is a namespace a stack may create and own: a DNS-1035 label other than
    Kubernetes' own (SYSTEM_NAMESPACES). An Output is checked when it resolves. Raises
    ValueError `<field>: ...`."""

    def rule(v: Any) -> str:
        if v in SYSTEM_NAMESPACES:
            raise _fail(
                field,
                f"{v!r} is one of Kubernetes' own namespaces; a created namespace is deleted with "
                "the stack: name another one, or use this one without creating it",
            )
        return v

    return checked(dns_label(field, value), rule)


def _int(field: str, value: Any, low: int, high: int) -> Any:
    def rule(v: Any) -> int:
        v = whole(v)
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise _fail(field, f"{v!r} must be an integer from {low} to {high}")
        return v

    return checked(value, rule)


def _choice(field: str, value: Any, choices: tuple[str, ...]) -> Any:
    def rule(v: Any) -> str:
        if v not in choices:
            raise _fail(field, f"{v!r} must be one of {', '.join(choices)}")
        return v

    return checked(value, rule)


# Each runtime's default MAX_BODY_BYTES: the body its memory limit must admit to start at all.
RUNTIME_MAX_BODY_BYTES = {
    "alibaba-oss-target": ServerSettings.max_body_bytes,
    "relay": RELAY_MAX_BODY_BYTES,
}


def cpu_millicores(quantity: str) -> Decimal:
    """Millicores of a Kubernetes CPU quantity as this module accepts it (`500m`, `2`, `0.5`)."""
    if quantity.endswith("m"):
        return Decimal(quantity[:-1])
    return Decimal(quantity) * 1000


def _memory_fits(at: str, component: str, max_body_bytes: int, limit: str) -> str:
    """The memory limit if the runtime can start with it (runtime/receiver/settings.py: the limit
    less RESERVED_MEMORY_BYTES, divided by BODY_MEMORY_FACTOR, must hold one MAX_BODY_BYTES
    body), else a ValueError with the minimum; the runtime would exit 2 and the pod crash-loop."""
    minimum = minimum_memory_limit(max_body_bytes)
    if memory_bytes(limit) < minimum:
        raise _fail(
            f"{at}memory_limit",
            f"{limit!r} is too small for the {component} runtime: at least "
            f"{-(-minimum // MIB)}Mi ({minimum} bytes: {RESERVED_MEMORY_BYTES // MIB} MiB reserved "
            f"plus {BODY_MEMORY_FACTOR} x its "
            f"{max_body_bytes}-byte body limit), or it exits at start-up",
        )
    return limit


def _not_above(field: str, size: Callable[[str], Any], request: str, limit: str) -> str:
    """The request if it is at most the limit; the API server refuses a pod whose request is
    above its limit (Kubernetes, "Resource Management for Pods and Containers")."""
    if size(request) > size(limit):
        raise _fail(field, f"{request!r} is more than the limit {limit!r}")
    return request


def memory_bytes(quantity: str) -> int:
    """Bytes of a Kubernetes memory quantity as this module accepts it (`256Mi`, `1G`, `1048576`).
    Raises ValueError for anything else."""
    match = re.fullmatch(r"([0-9]+)([A-Za-z]*)", quantity)
    if not match or match.group(2) not in _MEMORY_UNITS:
        raise ValueError(f"{quantity!r} is not a memory quantity")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


def _env_value(env_name: str, value: Any) -> str:
    # The schema's own message, for a value that was an Output when the schema saw it.
    if not isinstance(value, str):
        raise _fail(f"env.{env_name}", f"must be a string, not {value!r}")
    return value


def _at_least_min(at: str, max_replicas: int, min_replicas: int) -> int:
    if max_replicas < min_replicas:
        raise _fail(f"{at}max_replicas", f"{max_replicas} is below min_replicas {min_replicas}")
    return max_replicas


def _pod_identity(value: Any) -> PodIdentity | None:
    if value is None:
        return None
    account = dns_label("pod_identity.service_account_name", value.get("service_account_name"))
    role_arn = value.get("role_arn")
    if role_arn is None or (isinstance(role_arn, str) and not role_arn):
        raise _fail("pod_identity.role_arn", "is required")
    provider = value.get("oidc_provider_arn")
    if provider is None or (isinstance(provider, str) and not provider):
        raise _fail("pod_identity.oidc_provider_arn", "is required")
    return PodIdentity(account, role_arn, provider)


def runtime_settings(
    app_name: str,
    component: str,
    args: Mapping[str, Any],
    *,
    version: str = "0.1.0",
    options_at: str = "",
) -> RuntimeSettings:
    """Applies the rules to ContainerRuntimeArgs and WorkloadArgs already checked against their
    schema (components.schema) into RuntimeSettings; a ValueError names the bad field. Output
    values are checked when they resolve, with the same messages."""
    at = options_at  # where the caller wrote the RuntimeOptions, e.g. `relay.runtime.`
    image = args.get("image")
    build = None
    if args.get("build") is not None:
        if image is not None and image != "":
            raise _fail(f"{at}image", "conflicts with build (the built image is used, by digest)")
        build = image_build.build_settings(f"{at}build", args["build"], component)
    elif image is None or image == "":
        raise _fail(f"{at}image", "is required (or build)")
    else:
        image = matching(f"{at}image", image, _IMAGE, "a container image reference")
    env = dict(args.get("env") or {})
    for env_name, env_value in env.items():
        matching("env", env_name, _ENV_NAME, "an environment variable name")
        env[env_name] = checked(env_value, functools.partial(_env_value, env_name))
    secret_env = []
    for env_name, ref in dict(args.get("secret_env") or {}).items():
        matching("secret_env", env_name, _ENV_NAME, "an environment variable name")
        if env_name in env:
            raise _fail(f"secret_env.{env_name}", "is also set in env")
        secret_name = ref.get("secret_name") if isinstance(ref, Mapping) else None
        key = ref.get("key") if isinstance(ref, Mapping) else None
        if secret_name is None or (isinstance(secret_name, str) and not secret_name):
            raise _fail(f"secret_env.{env_name}.secret_name", "must name a Secret")
        matching(f"secret_env.{env_name}.key", key, _SECRET_KEY, "a Secret key")
        secret_env.append(SecretRef(env_name, secret_name, key))
    min_replicas = _int(f"{at}min_replicas", setting(args, "min_replicas", 1), 1, 100)
    max_replicas = derived(
        functools.partial(_at_least_min, at),
        _int(f"{at}max_replicas", setting(args, "max_replicas", min_replicas), 1, 100),
        min_replicas,
    )
    command = tuple(args.get("command") or ())
    cpu_limit = matching(
        f"{at}cpu_limit", setting(args, "cpu_limit", "500m"), _CPU, "a CPU quantity"
    )
    memory_limit = matching(
        f"{at}memory_limit",
        setting(args, "memory_limit", DEFAULT_MEMORY_LIMIT),
        _MEMORY,
        "a memory quantity",
    )
    if component in RUNTIME_MAX_BODY_BYTES:
        body = env.get("MAX_BODY_BYTES")
        body = int(body) if isinstance(body, str) and body.isdigit() else None
        memory_limit = derived(
            functools.partial(
                _memory_fits, at, component, body or RUNTIME_MAX_BODY_BYTES[component]
            ),
            memory_limit,
        )
    if not all(isinstance(c, str) and c for c in command):
        raise _fail("command", "must be a list of non-empty strings")
    return RuntimeSettings(
        app_name=dns_label("app_name", app_name),
        component=dns_label("component", component),
        image=image,
        image_pull_policy=_choice(
            f"{at}image_pull_policy",
            setting(args, "image_pull_policy", "IfNotPresent"),
            PULL_POLICIES,
        ),
        command=command,
        env=tuple(sorted(env.items())),
        secret_env=tuple(secret_env),
        namespace=dns_label(f"{at}namespace", setting(args, "namespace", "default")),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_cpu_utilization=_int(
            f"{at}target_cpu_utilization", setting(args, "target_cpu_utilization", 70), 10, 100
        ),
        cpu_request=derived(
            functools.partial(_not_above, f"{at}cpu_request", cpu_millicores),
            matching(
                f"{at}cpu_request", setting(args, "cpu_request", "100m"), _CPU, "a CPU quantity"
            ),
            cpu_limit,
        ),
        cpu_limit=cpu_limit,
        memory_request=derived(
            functools.partial(_not_above, f"{at}memory_request", memory_bytes),
            matching(
                f"{at}memory_request",
                setting(args, "memory_request", "128Mi"),
                _MEMORY,
                "a memory quantity",
            ),
            memory_limit,
        ),
        memory_limit=memory_limit,
        drain_timeout_seconds=_int(
            f"{at}drain_timeout_seconds",
            setting(args, "drain_timeout_seconds", DEFAULT_DRAIN_TIMEOUT_SECONDS),
            1,
            600,
        ),
        log_level=_choice(f"{at}log_level", setting(args, "log_level", "INFO"), LOG_LEVELS),
        mode=_choice(f"{at}mode", setting(args, "mode", "deployment"), MODES),
        service_type=_choice(
            "service_type", setting(args, "service_type", "ClusterIP"), SERVICE_TYPES
        ),
        run_as_user=_int(
            f"{at}run_as_user", setting(args, "run_as_user", DEFAULT_RUN_AS_USER), 1, 2**31 - 1
        ),
        version=version,
        pod_identity=_pod_identity(args.get("pod_identity")),
        build=build,
    )


def validate_runtime_options(
    field: str, options: Any, app_name: str, component: str, default_image: str
) -> dict[str, Any]:
    """Applies the rules to a connector's RuntimeOptions (already checked against their schema) up
    front, so a bad one fails before any resource exists. Answers the options with the connector's
    default image filled in (unless it builds its own); errors name `<field>.<option>`."""
    filled = dict(options)
    if options.get("build") is None:
        filled["image"] = setting(options, "image", default_image)
    runtime_settings(app_name, component, filled, options_at=f"{field}.")
    return filled


def labels(s: RuntimeSettings) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": s.component,
        "app.kubernetes.io/instance": s.app_name,
        "app.kubernetes.io/version": s.version,
        "app.kubernetes.io/component": s.component,
        "app.kubernetes.io/part-of": "cloudevents-connectors",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector_labels(s: RuntimeSettings) -> dict[str, str]:
    return {"app.kubernetes.io/name": s.component, "app.kubernetes.io/instance": s.app_name}


def metadata(s: RuntimeSettings) -> dict[str, Any]:
    return {"name": s.app_name, "namespace": s.namespace, "labels": labels(s)}


def container(s: RuntimeSettings) -> dict[str, Any]:
    knative = s.mode == "knative"
    env: list[dict[str, Any]] = []
    if not knative:
        # Knative reserves PORT and sets it itself (to the one declared containerPort).
        env.append({"name": "PORT", "value": str(CONTAINER_PORT)})
    env += [
        {"name": "DRAIN_TIMEOUT_SECONDS", "value": derived(str, s.drain_timeout_seconds)},
        {"name": "LOG_LEVEL", "value": s.log_level},
        # The runtime sizes its in-flight byte budget from the container's memory limit.
        {"name": "MEMORY_LIMIT_BYTES", "value": derived(_bytes_text, s.memory_limit)},
    ]
    env += [{"name": k, "value": v} for k, v in s.env]
    env += [
        {"name": r.env, "valueFrom": {"secretKeyRef": {"name": r.secret_name, "key": r.key}}}
        for r in s.secret_env
    ]
    if s.pod_identity:
        # The names alibabacloud-credentials' OIDC provider reads (the same the ACK webhook sets).
        env += [
            {"name": "ALIBABA_CLOUD_ROLE_ARN", "value": s.pod_identity.role_arn},
            {"name": "ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "value": s.pod_identity.oidc_provider_arn},
            {"name": "ALIBABA_CLOUD_OIDC_TOKEN_FILE", "value": OIDC_TOKEN_FILE},
        ]

    def probe(path: str, period: int) -> dict[str, Any]:
        # Knative accepts no probe port but the serving one, so name it by number there.
        http_get = {"path": path, "port": CONTAINER_PORT if knative else "http"}
        return {"httpGet": http_get, "periodSeconds": period, "timeoutSeconds": 2}

    spec: dict[str, Any] = {
        "name": s.component,
        "image": s.image,
        "imagePullPolicy": s.image_pull_policy,
        "ports": [{"name": "http1" if knative else "http", "containerPort": CONTAINER_PORT}],
        "env": env,
        "resources": {
            "requests": {"cpu": s.cpu_request, "memory": s.memory_request},
            "limits": {"cpu": s.cpu_limit, "memory": s.memory_limit},
        },
        "livenessProbe": probe("/healthz", 10),
        "readinessProbe": probe("/readyz", 5),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": s.run_as_user,
            "runAsGroup": s.run_as_user,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        # The root filesystem is read-only; Python and the SDKs still want a writable /tmp.
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 - an emptyDir
    }
    if s.pod_identity:
        spec["volumeMounts"].append(
            {"name": "rrsa-oidc-token", "mountPath": OIDC_TOKEN_DIR, "readOnly": True}
        )
    if s.command:
        spec["command"] = list(s.command)
    return spec


def _bytes_text(quantity: str) -> str:
    return str(memory_bytes(quantity))


def pod_spec(s: RuntimeSettings) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    pod: dict[str, Any] = {
        # The API-server token stays out; RRSA mounts only a token whose audience is STS.
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": s.termination_grace_period_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "fsGroup": s.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container(s)],
        "volumes": volumes,
    }
    if s.image_pull_secret is not None:
        pod["imagePullSecrets"] = [{"name": s.image_pull_secret}]
    if s.pod_identity:
        pod["serviceAccountName"] = s.pod_identity.service_account_name
        volumes.append(
            {
                "name": "rrsa-oidc-token",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "path": "token",
                                "audience": OIDC_AUDIENCE,
                                "expirationSeconds": OIDC_TOKEN_SECONDS,
                            }
                        }
                    ]
                },
            }
        )
    return pod


def deployment_spec(s: RuntimeSettings) -> dict[str, Any]:
    # No `replicas`: the HorizontalPodAutoscaler owns the count, and Pulumi would reset it.
    return {
        "selector": {"matchLabels": selector_labels(s)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {"metadata": {"labels": labels(s)}, "spec": pod_spec(s)},
    }


def service_spec(s: RuntimeSettings) -> dict[str, Any]:
    return {
        "type": s.service_type,
        "selector": selector_labels(s),
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }


def hpa_spec(s: RuntimeSettings) -> dict[str, Any]:
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": s.app_name},
        "minReplicas": s.min_replicas,
        "maxReplicas": s.max_replicas,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": s.target_cpu_utilization,
                    },
                },
            }
        ],
    }


def pdb_spec(s: RuntimeSettings) -> dict[str, Any]:
    # maxUnavailable (not minAvailable) so a single-replica runtime never blocks a node drain.
    return {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(s)}}


def knative_service_spec(s: RuntimeSettings) -> dict[str, Any]:
    pod = pod_spec(s)
    pod.pop("enableServiceLinks")
    # Knative's admission webhook refuses both in a revision template (fieldmask.go: the grace
    # period is never allowed; a pod-level securityContext only behind the
    # kubernetes.podspec-securitycontext flag, off by default). The container-level context keeps
    # non-root, read-only root, no escalation; Knative gives the pod its own grace period.
    pod.pop("terminationGracePeriodSeconds")
    pod.pop("securityContext")
    annotations = {
        "autoscaling.knative.dev/min-scale": derived(str, s.min_replicas),
        "autoscaling.knative.dev/max-scale": derived(str, s.max_replicas),
        "autoscaling.knative.dev/metric": "concurrency",
    }
    template_metadata = {"labels": labels(s), "annotations": annotations}
    return {"template": {"metadata": template_metadata, "spec": pod}}


def knative_metadata(s: RuntimeSettings) -> dict[str, Any]:
    meta = metadata(s)
    if s.service_type == "ClusterIP":
        meta["labels"] = {**meta["labels"], "networking.knative.dev/visibility": "cluster-local"}
    return meta


def cluster_url(s: RuntimeSettings) -> Any:
    """Where other pods reach the runtime (a Knative service answers on port 80 as well)."""
    return derived(
        lambda namespace: f"http://{s.app_name}.{namespace}.svc.cluster.local", s.namespace
    )
