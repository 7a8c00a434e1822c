"""Pure builders of ContainerRuntime: validation table first, then the manifests they build."""

import pytest

from components import container_spec as spec
from components.container_runtime import ContainerRuntimeArgs, RuntimeOptions, WorkloadArgs
from components.schema import validate

BASE = {"image": "ghcr.io/acme/relay:1.0"}


def settings(component="relay", **overrides):
    """Through the schema first, as ContainerRuntime does: structure there, rules here."""
    options = {**BASE, **overrides}
    workload = {k: options.pop(k) for k in list(options) if k in WorkloadArgs.__annotations__}
    top = {k: options.pop(k) for k in list(options) if k in ("service_type", "create_namespace")}
    try:
        args = validate(ContainerRuntimeArgs, {"runtime": options, **top})
    except ValueError as error:  # named as RuntimeOptions does, like the rules below
        raise ValueError(str(error).removeprefix("runtime.")) from None
    checked = {**args.pop("runtime"), **args, **validate(WorkloadArgs, workload)}
    return spec.runtime_settings("relay", component, checked)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"image": ""}, "image"),
        ({"image": "has space:1"}, "image"),
        ({"image_pull_policy": "Sometimes"}, "image_pull_policy"),
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"min_replicas": 0}, "min_replicas"),
        ({"min_replicas": True}, "min_replicas"),
        ({"min_replicas": 3, "max_replicas": 2}, "max_replicas"),
        ({"target_cpu_utilization": 5}, "target_cpu_utilization"),
        ({"cpu_request": "lots"}, "cpu_request"),
        ({"memory_limit": "1GB"}, "memory_limit"),
        ({"drain_timeout_seconds": 0}, "drain_timeout_seconds"),
        ({"log_level": "TRACE"}, "log_level"),
        ({"mode": "lambda"}, "mode"),
        ({"service_type": "NodePort"}, "service_type"),
        ({"run_as_user": 0}, "run_as_user"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"TOKEN": object()}}, "env.TOKEN"),
        ({"secret_env": {"K": {"secret_name": "s", "key": "bad key"}}}, "secret_env.K.key"),
        ({"secret_env": {"K": {"key": "k"}}}, "secret_env.K.secret_name"),
        (
            {"env": {"K": "v"}, "secret_env": {"K": {"secret_name": "s", "key": "k"}}},
            "secret_env.K",
        ),
        ({"command": ["python", ""]}, "command"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_invalid_settings_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        settings(**overrides)


def test_app_name_must_be_a_dns_label():
    with pytest.raises(ValueError, match=r"^app_name: "):
        spec.runtime_settings("Relay_1", "relay", BASE)


def test_defaults():
    s = settings()
    assert (s.min_replicas, s.max_replicas, s.target_cpu_utilization) == (1, 1, 70)
    assert (s.namespace, s.mode, s.service_type, s.image_pull_policy) == (
        "default",
        "deployment",
        "ClusterIP",
        "IfNotPresent",
    )
    assert s.drain_timeout_seconds == spec.DEFAULT_DRAIN_TIMEOUT_SECONDS == 20


@pytest.mark.parametrize("drain", [1, 20, 45, 600])
def test_grace_period_outlives_the_drain(drain):
    s = settings(drain_timeout_seconds=drain)
    pod = spec.pod_spec(s)
    assert pod["terminationGracePeriodSeconds"] > drain
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["DRAIN_TIMEOUT_SECONDS"] == str(drain)


def test_container_is_locked_down_and_probed():
    container = spec.container(settings(run_as_user=4242))
    assert container["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 4242,
        "runAsGroup": 4242,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert set(container["resources"]) == {"requests", "limits"}
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]


def test_secret_env_is_only_a_reference():
    s = settings(
        env={"K_SINK": "http://broker"},
        secret_env={"RELAY_SIGNING_SECRET": {"secret_name": "relay-signing", "key": "k"}},
    )
    env = {e["name"]: e for e in spec.container(s)["env"]}
    assert env["K_SINK"] == {"name": "K_SINK", "value": "http://broker"}
    assert env["RELAY_SIGNING_SECRET"] == {
        "name": "RELAY_SIGNING_SECRET",
        "valueFrom": {"secretKeyRef": {"name": "relay-signing", "key": "k"}},
    }


def test_labels_and_selectors():
    s = settings()
    labels = spec.labels(s)
    assert {k for k in labels if k.startswith("app.kubernetes.io/")} == {
        f"app.kubernetes.io/{k}"
        for k in ("name", "instance", "version", "component", "part-of", "managed-by")
    }
    selector = spec.selector_labels(s)
    assert selector.items() <= labels.items()
    assert spec.deployment_spec(s)["selector"]["matchLabels"] == selector
    assert spec.service_spec(s)["selector"] == selector
    assert spec.pdb_spec(s)["selector"]["matchLabels"] == selector


def test_hpa_owns_the_replica_count():
    s = settings(min_replicas=2, max_replicas=5, target_cpu_utilization=60)
    assert "replicas" not in spec.deployment_spec(s)
    hpa = spec.hpa_spec(s)
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 5)
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert hpa["scaleTargetRef"]["name"] == "relay"


def test_knative_service_carries_the_same_container_and_scale_bounds():
    s = settings(mode="knative", min_replicas=2, max_replicas=4)
    knative = spec.knative_service_spec(s)
    template = knative["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "2"
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "4"
    container = template["spec"]["containers"][0]
    assert container["securityContext"] == spec.container(settings())["securityContext"]
    assert container["livenessProbe"]["httpGet"]["port"] == spec.CONTAINER_PORT
    assert spec.knative_metadata(s)["labels"]["networking.knative.dev/visibility"] == (
        "cluster-local"
    )
    public = settings(mode="knative", service_type="LoadBalancer")
    assert "networking.knative.dev/visibility" not in spec.knative_metadata(public)["labels"]


def test_cluster_url():
    assert spec.cluster_url(settings(namespace="ce")) == "http://relay.ce.svc.cluster.local"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("x", r"^args: must be an object \(key: value lines\), not str"),
        ({"command": ["sh"]}, r"^command: unknown argument; known: image, "),
    ],
)
def test_runtime_options_schema(options, message):
    with pytest.raises(ValueError, match=message):
        validate(RuntimeOptions, options)


def test_validate_runtime_options_applies_the_rules():
    with pytest.raises(ValueError, match=r"^runtime\.min_replicas: "):
        spec.validate_runtime_options("runtime", {"min_replicas": 0}, "relay", "relay", "img:1")


def test_validate_runtime_options_fills_the_default_image():
    checked = spec.validate_runtime_options("runtime", {}, "relay", "relay", "img:1")
    assert checked == {"image": "img:1"}


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("256Mi", 268435456), ("1Gi", 1073741824), ("512M", 512000000), ("536870912", 536870912)],
)
def test_memory_limit_bytes_reaches_the_container(quantity, expected):
    for mode in spec.MODES:
        env = spec.container(settings(memory_limit=quantity, mode=mode))["env"]
        assert {"name": "MEMORY_LIMIT_BYTES", "value": str(expected)} in env


def test_memory_bytes_refuses_what_is_not_a_quantity():
    for bad in ("1GB", "Mi", "1.5Gi", ""):
        with pytest.raises(ValueError, match="not a memory quantity"):
            spec.memory_bytes(bad)


def test_port_env_only_outside_knative():
    names = {e["name"] for e in spec.container(settings())["env"]}
    assert "PORT" in names
    names = {e["name"] for e in spec.container(settings(mode="knative"))["env"]}
    assert not names & set(spec.KNATIVE_RESERVED_ENV)


IDENTITY = {
    "service_account_name": "oss-target",
    "role_arn": "acs:ram::1234567890123456:role/writer",
    "oidc_provider_arn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c0ffee",
}


@pytest.mark.parametrize("mode", spec.MODES)
def test_pod_identity_projects_an_sts_token_and_names_the_role(mode):
    s = settings(mode=mode, pod_identity=IDENTITY)
    pod = spec.pod_spec(s)
    assert pod["serviceAccountName"] == "oss-target"
    # Not the API-server token: only a token whose audience is STS.
    assert pod["automountServiceAccountToken"] is False
    (token,) = [v for v in pod["volumes"] if "projected" in v]
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "sts.aliyuncs.com"
    container = pod["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == token["name"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"] == f"{mount['mountPath']}/{source['path']}"
    assert env["ALIBABA_CLOUD_ROLE_ARN"] == IDENTITY["role_arn"]
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"] == IDENTITY["oidc_provider_arn"]


def test_without_pod_identity_no_service_account_at_all():
    pod = spec.pod_spec(settings())
    assert "serviceAccountName" not in pod
    assert not any(e["name"].startswith("ALIBABA_CLOUD_") for e in pod["containers"][0]["env"])


@pytest.mark.parametrize(
    ("identity", "field"),
    [
        ({**IDENTITY, "service_account_name": "Bad_SA"}, "pod_identity.service_account_name"),
        ({**IDENTITY, "role_arn": ""}, "pod_identity.role_arn"),
        ({k: v for k, v in IDENTITY.items() if k != "oidc_provider_arn"}, "pod_identity.oidc"),
        ({**IDENTITY, "audience": "x"}, "pod_identity.audience"),
    ],
)
def test_pod_identity_is_validated(identity, field):
    with pytest.raises(ValueError, match=rf"^{field}"):
        settings(pod_identity=identity)


# --- what the pod can start with and what the API server accepts ---------------------------------


@pytest.mark.parametrize(
    ("component", "limit", "minimum"),
    [
        # (limit - 112 MiB) / 3 must hold MAX_BODY_BYTES: 16 MiB (target), 256 KiB (relay).
        ("alibaba-oss-target", "128Mi", "160Mi"),
        ("alibaba-oss-target", "167772159", "160Mi"),
        ("relay", "64Mi", "113Mi"),
        ("relay", "112Mi", "113Mi"),
    ],
)
def test_memory_limit_the_runtime_cannot_start_with_is_refused(component, limit, minimum):
    with pytest.raises(ValueError, match=rf"^memory_limit: '{limit}' is too small .* {minimum} "):
        settings(component, memory_limit=limit, memory_request="64Mi")


def test_memory_limit_at_the_runtimes_minimum_starts():
    from runtime.receiver.settings import EnvReader, read_server_settings

    for component, limit in (("alibaba-oss-target", "160Mi"), ("relay", "113Mi")):
        s = settings(component, memory_limit=limit, memory_request="64Mi")
        env = {e["name"]: e["value"] for e in spec.container(s)["env"] if "value" in e}
        body = spec.RUNTIME_MAX_BODY_BYTES[component]
        # The runtime's own reader agrees: this limit admits the body limit, a byte less does not.
        read_server_settings(EnvReader(env), max_body_bytes=body)
    # A container that is not one of our runtimes has no such floor.
    assert settings("other", memory_limit="32Mi", memory_request="16Mi").memory_limit == "32Mi"


def test_memory_limit_rule_follows_a_lower_body_limit_in_env():
    s = settings(
        "alibaba-oss-target",
        memory_limit="128Mi",
        memory_request="64Mi",
        env={"MAX_BODY_BYTES": str(4 * 1024 * 1024)},  # 112 MiB + 3 x 4 MiB = 124 MiB
    )
    assert s.memory_limit == "128Mi"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cpu_request": "2", "cpu_limit": "500m"}, r"^cpu_request: '2' is more than the limit"),
        ({"cpu_request": "600m", "cpu_limit": "0.5"}, r"^cpu_request: '600m' is more than"),
        ({"memory_request": "1Gi"}, r"^memory_request: '1Gi' is more than the limit '256Mi'"),
        (
            {"memory_request": "1Gi", "memory_limit": "64Mi"},
            r"^memory_request: '1Gi' is more than the limit '64Mi'",
        ),
    ],
)
def test_requests_above_limits_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        settings("other", **overrides)


def test_requests_equal_to_limits_are_accepted():
    s = settings(cpu_request="0.5", cpu_limit="500m", memory_request="256Mi", memory_limit="256Mi")
    assert (s.cpu_request, s.memory_request) == ("0.5", "256Mi")
