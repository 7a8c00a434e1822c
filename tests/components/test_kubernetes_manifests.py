"""Every Kubernetes object the components declare passes kubernetes-validate (strict) for a
current Kubernetes version. Manifests are built from the recorded inputs, as a provider sends them.
"""

import kubernetes_validate
import pulumi
import pytest

from components import AlibabaOssTarget, ContainerRuntime, TencentCosSource
from tests.components.helpers import kubernetes_manifest, kubernetes_objects
from tests.components.knative_rules import admission_errors

KUBERNETES_VERSION = kubernetes_validate.latest_version()
KNATIVE = "kubernetes:serving.knative.dev/v1:Service"
RUNTIME = {"image": "ghcr.io/acme/app:1.0", "namespace": "ce", "min_replicas": 2, "max_replicas": 5}


def _scenarios(tmp_dir: str) -> dict:
    cos = {"region": "ap-guangzhou", "bucket_name": "uploads"}
    broker = "http://broker.ce.svc.cluster.local/"
    return {
        "runtime-deployment": lambda: ContainerRuntime(
            "app", {"runtime": RUNTIME, "create_namespace": True, "service_type": "LoadBalancer"}
        ),
        "runtime-knative": lambda: ContainerRuntime(
            "app", {"runtime": {**RUNTIME, "mode": "knative"}}
        ),
        "oss-target": lambda: AlibabaOssTarget(
            "oss-target",
            {"region": "cn-hangzhou", "bucket_name": "acme-events", "runtime": RUNTIME},
        ),
        "oss-target-knative": lambda: AlibabaOssTarget(
            "oss-target",
            {
                "region": "cn-hangzhou",
                "bucket_name": "acme-events",
                "access_key_id": "LTAI5tAAAAAAAAAAAAAA",
                "access_key_secret": pulumi.Output.secret("s"),
                "runtime": {**RUNTIME, "mode": "knative"},
            },
        ),
        "oss-target-rrsa-knative": lambda: AlibabaOssTarget(
            "oss-target",
            {
                "region": "cn-hangzhou",
                "bucket_name": "acme-events",
                "credentials": {
                    "mode": "rrsa",
                    "oidc_provider_arn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1",
                    "oidc_issuer_url": "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c1",
                },
                "runtime": {**RUNTIME, "mode": "knative"},
            },
        ),
        "cos-relay": lambda: TencentCosSource(
            "cos-source", {**cos, "relay": {"sink_url": broker}}, package_dir=tmp_dir
        ),
        "cos-relay-knative": lambda: TencentCosSource(
            "cos-source",
            {
                **cos,
                "relay": {
                    "sink_url": broker,
                    "public_url": "https://relay.example.com/",
                    "runtime": {"mode": "knative"},
                },
            },
            package_dir=tmp_dir,
        ),
    }


SCENARIOS = list(_scenarios("").keys())


def _validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_kubernetes_object_validates(pulumi_mocks, tmp_path, scenario):
    pulumi_mocks.run(_scenarios(str(tmp_path))[scenario])
    objects = kubernetes_objects(pulumi_mocks)
    assert objects, "the scenario declares Kubernetes objects"
    for registration in objects:
        manifest = kubernetes_manifest(registration)
        if registration.typ == KNATIVE:
            # kubernetes-validate ships no Knative CRD schema: validate the revision template as
            # the core Pod it becomes.
            template = manifest["spec"]["template"]
            manifest = {"apiVersion": "v1", "kind": "Pod", **template}
            manifest["metadata"] = {**template["metadata"], "name": registration.name}
        try:
            _validate(manifest)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{registration.urn}: {error.message}")


def test_the_validator_rejects_what_it_should(pulumi_mocks):
    """Guards the test above: a broken Deployment must not validate."""
    pulumi_mocks.run(lambda: ContainerRuntime("app", {"runtime": RUNTIME}))
    manifest = kubernetes_manifest(pulumi_mocks.one("kubernetes:apps/v1:Deployment"))
    manifest["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = "root"
    with pytest.raises(kubernetes_validate.ValidationError):
        _validate(manifest)


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.endswith("knative")])
def test_knative_services_pass_the_admission_rules(pulumi_mocks, tmp_path, scenario):
    pulumi_mocks.run(_scenarios(str(tmp_path))[scenario])
    services = [r for r in kubernetes_objects(pulumi_mocks) if r.typ == KNATIVE]
    assert services
    for registration in services:
        assert admission_errors(kubernetes_manifest(registration)) == [], registration.urn


def test_knative_rules_refuse_what_the_webhook_refuses(pulumi_mocks):
    """Guards the test above with the three refusals a real cluster gave the old template."""
    pulumi_mocks.run(lambda: ContainerRuntime("app", {"runtime": {**RUNTIME, "mode": "knative"}}))
    manifest = kubernetes_manifest(pulumi_mocks.one(KNATIVE))
    pod = manifest["spec"]["template"]["spec"]
    pod["terminationGracePeriodSeconds"] = 30
    pod["securityContext"] = {"runAsNonRoot": True}
    pod["containers"][0]["env"].append({"name": "PORT", "value": "8080"})
    assert admission_errors(manifest) == [
        "spec.template.spec.securityContext: not allowed in a revision",
        "spec.template.spec.terminationGracePeriodSeconds: not allowed in a revision",
        "container app: env PORT is reserved",
    ]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda c, p: c["volumeMounts"].append({"name": "tmp", "mountPath": "/dev"}), "reserved"),
        (
            lambda c, p: c["securityContext"].update(privileged=True),
            "privileged may only be false",
        ),
        (
            lambda c, p: (
                p["volumes"].append({"name": "s", "secret": {"secretName": "x"}})
                or c["volumeMounts"].append({"name": "s", "mountPath": "/etc/s"})
            ),
            "volumeMount s must be readOnly",
        ),
        (lambda c, p: c["ports"].append({"containerPort": 9000}), "exactly one container port"),
        (lambda c, p: c.update(lifecycle={}), "lifecycle not allowed"),
    ],
)
def test_knative_rules_cover_mounts_security_context_and_ports(pulumi_mocks, change, error):
    pulumi_mocks.run(lambda: ContainerRuntime("app", {"runtime": {**RUNTIME, "mode": "knative"}}))
    manifest = kubernetes_manifest(pulumi_mocks.one(KNATIVE))
    pod = manifest["spec"]["template"]["spec"]
    change(pod["containers"][0], pod)
    assert any(error in e for e in admission_errors(manifest)), admission_errors(manifest)
