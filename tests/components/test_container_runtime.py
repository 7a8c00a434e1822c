"""ContainerRuntime under the mocks: the objects it declares, their names, parents and contents."""

import pulumi_kubernetes as k8s
import pytest

from components import ContainerRuntime
from tests.components.helpers import kubernetes_manifest, names_by_type, urn_parent_type
from tests.pulumi_mocks import plain_strings

ARGS = {"image": "ghcr.io/acme/relay:1.0", "namespace": "ce"}
# What a connector decides (the `workload` keyword; not in the public schema).
WORKLOAD = {
    "component": "relay",
    "command": ["python", "-m", "runtime.relay"],
    "env": {"K_SINK": "http://broker.ce.svc.cluster.local/"},
    "secret_env": {"RELAY_SIGNING_SECRET": {"secret_name": "relay-signing", "key": "k"}},
}


def _args(options: dict) -> dict:
    """ContainerRuntimeArgs from flat options: how it is reached at the top, the rest in runtime."""
    options = {**ARGS, **options}
    top = {k: options.pop(k) for k in list(options) if k in ("service_type", "create_namespace")}
    return {"runtime": options, **top}


def _runtime(args=None, workload=None):
    return ContainerRuntime("relay", _args(args or {}), workload={**WORKLOAD, **(workload or {})})


def test_deployment_mode_declares_exactly_these_objects(pulumi_mocks):
    runtime = pulumi_mocks.run(lambda: _runtime())
    component = pulumi_mocks.one("cloudevents-connectors:index:ContainerRuntime")
    assert names_by_type(pulumi_mocks, component.urn) == {
        ("kubernetes:apps/v1:Deployment", "relay-deployment"),
        ("kubernetes:core/v1:Service", "relay-service"),
        ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "relay-hpa"),
        ("kubernetes:policy/v1:PodDisruptionBudget", "relay-pdb"),
    }
    for child in pulumi_mocks.descendants_of(component.urn):
        assert child.parent == component.urn, child.urn
        assert urn_parent_type(child.urn) == component.typ, child.urn
        assert child.inputs["metadata"]["name"] == "relay"
        assert child.inputs["metadata"]["namespace"] == "ce"
    assert pulumi_mocks.value(runtime.url) == "http://relay.ce.svc.cluster.local"
    assert pulumi_mocks.value(runtime.public_url) is None
    assert pulumi_mocks.value(runtime.service_name) == "relay"


def test_knative_mode_declares_one_knative_service(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime({"mode": "knative"}))
    component = pulumi_mocks.one("cloudevents-connectors:index:ContainerRuntime")
    assert names_by_type(pulumi_mocks, component.urn) == {
        ("kubernetes:serving.knative.dev/v1:Service", "relay-knative-service"),
    }
    knative = pulumi_mocks.one("kubernetes:serving.knative.dev/v1:Service")
    assert knative.inputs["apiVersion"] == "serving.knative.dev/v1"
    container = knative.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "runtime.relay"]
    assert container["image"] == "ghcr.io/acme/relay:1.0"


def test_created_namespace_comes_first(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime({"create_namespace": True}))
    namespace = pulumi_mocks.one("kubernetes:core/v1:Namespace")
    assert namespace.inputs["metadata"]["name"] == "ce"
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    assert namespace.urn in deployment.dependencies


def test_load_balancer_exposes_a_public_url(pulumi_mocks):
    runtime = pulumi_mocks.run(lambda: _runtime({"service_type": "LoadBalancer"}))
    service = pulumi_mocks.one("kubernetes:core/v1:Service")
    assert service.inputs["spec"]["type"] == "LoadBalancer"
    assert pulumi_mocks.value(runtime.public_url) == "http://203.0.113.10"


def test_pod_is_non_root_read_only_probed_and_drained(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime({"drain_timeout_seconds": 25}))
    manifest = kubernetes_manifest(pulumi_mocks.one("kubernetes:apps/v1:Deployment"))
    pod = manifest["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > 25
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert container["imagePullPolicy"] == "IfNotPresent"
    labels = manifest["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "relay"
    assert labels["app.kubernetes.io/managed-by"] == "pulumi"


def test_secret_env_never_becomes_a_literal(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime())
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    env = deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    signing = next(e for e in env if e["name"] == "RELAY_SIGNING_SECRET")
    assert "value" not in signing
    assert signing["valueFrom"]["secretKeyRef"] == {"name": "relay-signing", "key": "k"}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"image": ""}, "runtime.image"),
        ({"min_replicas": 0}, "runtime.min_replicas"),
        ({"mode": "vm"}, "runtime.mode"),
        ({"create_namespace": "yes"}, "create_namespace"),
        ({"service_type": "NodePort"}, "service_type"),
        ({"command": ["sh"]}, "runtime.command"),
        ({"env": {"K": "v"}}, "runtime.env"),
    ],
)
def test_invalid_arguments_raise_before_anything_is_registered(pulumi_mocks, overrides, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        pulumi_mocks.run(lambda: ContainerRuntime("relay", _args(overrides)))
    assert pulumi_mocks.resources == []


@pytest.mark.parametrize(
    ("workload", "field"),
    [({"app_name": "Not_DNS"}, "app_name"), ({"env": {"SECRET": 42}}, "env.SECRET")],
)
def test_invalid_workload_raises_before_anything_is_registered(pulumi_mocks, workload, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        pulumi_mocks.run(lambda: _runtime(workload=workload))
    assert pulumi_mocks.resources == []


def test_no_plain_secret_anywhere(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime())
    for r in pulumi_mocks.resources:
        assert not any("whsec_" in s for s in plain_strings(r.inputs)), r.urn


@pytest.mark.parametrize(
    ("runtime", "message"),
    [
        ({"image": "nginx:1"}, "runtime.namespace: is required with create_namespace"),
        *(
            (
                {"image": "nginx:1", "namespace": reserved},
                f"runtime.namespace: '{reserved}' is one of Kubernetes' own namespaces",
            )
            for reserved in ("default", "kube-system", "kube-public", "kube-node-lease")
        ),
    ],
)
def test_create_namespace_refuses_kubernetes_own_or_an_implicit_namespace(
    pulumi_mocks, runtime, message
):
    with pytest.raises(ValueError, match=f"^{message}"):
        pulumi_mocks.run(
            lambda: ContainerRuntime("c", {"runtime": runtime, "create_namespace": True})
        )
    assert pulumi_mocks.of_type("kubernetes:core/v1:Namespace") == []


def test_create_namespace_refuses_an_output_resolving_to_kube_system(pulumi_mocks):
    def program():
        name = k8s.core.v1.ConfigMap("values", data={"ns": "kube-system"}).data["ns"]
        return ContainerRuntime(
            "c", {"runtime": {"image": "nginx:1", "namespace": name}, "create_namespace": True}
        )

    with pytest.raises(Exception, match="'kube-system' is one of Kubernetes' own namespaces"):
        pulumi_mocks.run(program)


def test_an_existing_default_namespace_is_still_usable(pulumi_mocks):
    pulumi_mocks.run(lambda: ContainerRuntime("c", {"runtime": {"image": "nginx:1"}}))
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    assert deployment.inputs["metadata"]["namespace"] == "default"
    assert pulumi_mocks.of_type("kubernetes:core/v1:Namespace") == []
