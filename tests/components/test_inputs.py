"""Outputs of other resources as arguments: the resolved values reach the right resource inputs,
and an invalid resolved value fails with the same message a plain one gets."""

import json

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import AlibabaOssTarget, ContainerRuntime, TencentCosSource
from tests.pulumi_mocks import DEFAULT_APP_ID

BROKER = "http://broker-ingress.knative-eventing.svc.cluster.local/ce/default"


def _values(**data: str) -> dict[str, pulumi.Output]:
    """Outputs of another (mocked) resource: a ConfigMap's data, known only once it is created."""
    config_map = k8s.core.v1.ConfigMap("values", data=data)
    return {key: config_map.data.apply(lambda d, key=key: d[key]) for key in data}


def _env(deployment) -> dict:
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_oss_target_takes_region_bucket_and_prefix_as_outputs(pulumi_mocks):
    def program():
        v = _values(region="cn-shanghai", bucket="acme-from-output", prefix="in/")
        assert isinstance(v["region"], pulumi.Output)
        return AlibabaOssTarget(
            "oss-target",
            {"region": v["region"], "bucket_name": v["bucket"], "key_prefix": v["prefix"]},
        )

    target = pulumi_mocks.run(program)
    bucket = pulumi_mocks.one("alicloud:oss/bucket:Bucket")
    assert bucket.inputs["bucket"] == "acme-from-output"
    policy = json.loads(pulumi_mocks.one("alicloud:ram/policy:Policy").inputs["policyDocument"])
    assert policy["Statement"][0]["Resource"] == ["acs:oss:*:*:acme-from-output/*"]
    env = _env(pulumi_mocks.one("kubernetes:apps/v1:Deployment"))
    assert env["OSS_REGION"] == "cn-shanghai"
    assert env["OSS_ENDPOINT"] == "https://oss-cn-shanghai.aliyuncs.com"
    assert env["OSS_BUCKET"] == "acme-from-output"
    assert env["OSS_KEY_PREFIX"] == "in/"
    assert pulumi_mocks.value(target.endpoint) == "https://oss-cn-shanghai.aliyuncs.com"
    assert pulumi_mocks.value(target.bucket_name) == "acme-from-output"


def test_cos_source_takes_region_bucket_and_relay_sink_as_outputs(pulumi_mocks, tmp_path):
    def program():
        v = _values(region="ap-shanghai", bucket="uploads", sink=BROKER, prefix="in/")
        return TencentCosSource(
            "cos-source",
            {
                "region": v["region"],
                "bucket_name": v["bucket"],
                "prefix": v["prefix"],
                "relay": {"sink_url": v["sink"], "runtime": {"namespace": "ce"}},
            },
            package_dir=str(tmp_path),
        )

    source = pulumi_mocks.run(program)
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    [trigger] = function.inputs["triggers"]
    assert trigger["name"] == f"uploads-{DEFAULT_APP_ID}"
    assert trigger["cosRegion"] == "ap-shanghai"
    assert json.loads(trigger["triggerDesc"])["filter"]["Prefix"] == "in/"
    bucket = pulumi_mocks.one("tencentcloud:Cos/bucket:Bucket")
    assert bucket.inputs["bucket"] == f"uploads-{DEFAULT_APP_ID}"
    relay = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    assert _env(relay)["K_SINK"] == BROKER
    assert pulumi_mocks.value(source.bucket_name) == f"uploads-{DEFAULT_APP_ID}"


def test_cos_source_takes_a_sink_url_output(pulumi_mocks, tmp_path):
    def program():
        v = _values(sink="https://sink.example/events")
        return TencentCosSource(
            "cos-source",
            {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": v["sink"]},
            package_dir=str(tmp_path),
        )

    pulumi_mocks.run(program)
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    assert function.inputs["environment"]["K_SINK"] == "https://sink.example/events"


def test_container_runtime_takes_env_values_image_and_namespace_as_outputs(pulumi_mocks):
    def program():
        v = _values(sink=BROKER, image="ghcr.io/acme/relay:2.0", namespace="from-output")
        return ContainerRuntime(
            "relay",
            {
                "runtime": {
                    "image": v["image"],
                    "namespace": v["namespace"],
                    "memory_limit": "512Mi",
                }
            },
            workload={"env": {"K_SINK": v["sink"]}},
        )

    runtime = pulumi_mocks.run(program)
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/relay:2.0"
    assert _env(deployment)["K_SINK"] == BROKER
    assert deployment.inputs["metadata"]["namespace"] == "from-output"
    assert pulumi_mocks.value(runtime.url) == "http://relay.from-output.svc.cluster.local"


def test_container_runtime_builds_to_a_registry_and_repository_given_as_outputs(pulumi_mocks):
    def program():
        v = _values(registry="registry.cn-hangzhou.aliyuncs.com", repository="acme/relay")
        build = {"registry": v["registry"], "repository": v["repository"], "tag": "v1"}
        return ContainerRuntime(
            "relay", {"runtime": {"build": build}}, workload={"component": "relay"}
        )

    pulumi_mocks.run(program)
    image = pulumi_mocks.one("docker-build:index:Image")
    assert image.inputs["tags"] == ["registry.cn-hangzhou.aliyuncs.com/acme/relay:v1"]
    container = pulumi_mocks.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]
    assert container["spec"]["containers"][0]["image"] == (
        f"registry.cn-hangzhou.aliyuncs.com/acme/relay@{image.outputs['digest']}"
    )


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda v: AlibabaOssTarget(
                "oss-target", {"region": "cn-hangzhou", "bucket_name": v["bad"]}
            ),
            "bucket_name: 'Acme_Events' is not a valid OSS bucket name",
        ),
        (
            lambda v: AlibabaOssTarget("oss-target", {"region": v["bad"], "bucket_name": "acme"}),
            "region: 'Acme_Events' is not one of Alibaba Cloud's regions",
        ),
        (
            lambda v: ContainerRuntime(
                "relay", {"runtime": {"image": "img:1"}}, workload={"env": {"K_SINK": v["number"]}}
            ),
            "env.K_SINK: must be a string, not 42",
        ),
        (
            lambda v: ContainerRuntime(
                "relay", {"runtime": {"image": "img:1", "namespace": v["bad"]}}
            ),
            "runtime.namespace: 'Acme_Events' is not a DNS-1035 label",
        ),
        (
            lambda v: ContainerRuntime(
                "relay",
                {"runtime": {"build": {"registry": "r.example.com", "repository": v["bad"]}}},
                workload={"component": "relay"},
            ),
            "runtime.build.repository: 'Acme_Events' is not a repository path",
        ),
    ],
)
def test_an_invalid_resolved_value_fails_with_the_plain_values_message(
    pulumi_mocks, build, message
):
    def program():
        v = _values(bad="Acme_Events")
        v["number"] = v["bad"].apply(lambda _: 42)
        return build(v)

    with pytest.raises(Exception, match=message) as resolved:
        pulumi_mocks.run(program)
    # The deployment fails on the rule's own ValueError (Pulumi wraps it with the resource).
    assert f"ValueError has risen: {message}" in str(resolved.value) or str(
        resolved.value
    ).startswith(message)
    pulumi_mocks.reset()
    with pytest.raises(ValueError, match=f"^{message}"):
        # The same message for the plain value, at construction, before any resource exists.
        pulumi_mocks.run(lambda: build({"bad": "Acme_Events", "number": 42}))


def test_sink_url_output_that_is_not_a_url_fails_the_deployment(pulumi_mocks, tmp_path):
    def program():
        v = _values(sink="ftp://sink.example/")
        return TencentCosSource(
            "cos-source",
            {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": v["sink"]},
            package_dir=str(tmp_path),
        )

    with pytest.raises(Exception, match=r"sink_url: 'ftp://sink.example/' is not an http"):
        pulumi_mocks.run(program)


# Every boolean Input, as `pulumi.Input[bool]` in the Args schemas (checked below to be all).
BOOL_INPUTS = {
    "AlibabaOssTargetArgs.force_destroy": lambda v, _: AlibabaOssTarget(
        "oss-target", {"region": "cn-hangzhou", "bucket_name": "acme", "force_destroy": v}
    ),
    "AlibabaOssTargetArgs.use_internal_endpoint": lambda v, _: AlibabaOssTarget(
        "oss-target", {"region": "cn-hangzhou", "bucket_name": "acme", "use_internal_endpoint": v}
    ),
    "TencentCosSourceArgs.versioning": lambda v, d: _cos_source({"versioning": v}, d),
    "TencentCosSourceArgs.force_destroy": lambda v, d: _cos_source({"force_destroy": v}, d),
    "TencentCosSourceArgs.debug": lambda v, d: _cos_source({"debug": v}, d),
    "FunctionArgs.public_network": lambda v, d: _cos_source({"function": {"public_network": v}}, d),
}


def _cos_source(extra: dict, package_dir: str) -> TencentCosSource:
    args = {"region": "ap-guangzhou", "bucket_name": "uploads", "sink_url": "https://s.example/"}
    return TencentCosSource("cos-source", {**args, **extra}, package_dir=package_dir)


def _bool_inputs() -> set[str]:
    """`<Schema>.<field>` for every `pulumi.Input[bool]` field reachable from the components."""
    from components import alibaba_oss_target, container_runtime, tencent_cos_source
    from components.schema import _fields, _is_input_bool, _is_schema, _unwrap

    found: set[str] = set()

    def walk(td) -> None:
        for key, annotation in _fields(td)[0].items():
            annotation = _unwrap(annotation)
            if _is_input_bool(annotation):
                found.add(f"{td.__name__}.{key}")
            elif _is_schema(annotation):
                walk(annotation)

    walk(alibaba_oss_target.AlibabaOssTargetArgs)
    walk(tencent_cos_source.TencentCosSourceArgs)
    walk(container_runtime.ContainerRuntimeArgs)
    return found


def test_the_bool_table_names_every_boolean_input():
    assert _bool_inputs() == set(BOOL_INPUTS)


@pytest.mark.parametrize("field", sorted(BOOL_INPUTS))
@pytest.mark.parametrize("text", ["false", "yes", 0])
def test_a_boolean_output_resolving_to_a_non_boolean_fails(pulumi_mocks, tmp_path, field, text):
    name = field.split(".")[1]

    def program():
        flag = _values(flag="x")["flag"].apply(lambda _: text)
        return BOOL_INPUTS[field](flag, str(tmp_path))

    with pytest.raises(Exception, match=f"{name}: must be true or false, not {text!r}"):
        pulumi_mocks.run(program)


def test_a_false_output_keeps_the_public_endpoint(pulumi_mocks):
    def program():
        flag = _values(flag="x")["flag"].apply(lambda _: False)
        return BOOL_INPUTS["AlibabaOssTargetArgs.use_internal_endpoint"](flag, None)

    pulumi_mocks.run(program)
    env = _env(pulumi_mocks.one("kubernetes:apps/v1:Deployment"))
    assert env["OSS_ENDPOINT"] == "https://oss-cn-hangzhou.aliyuncs.com"


def test_the_mock_engine_takes_a_secret_bucket_name_and_app_id(pulumi_mocks, tmp_path):
    """The shipped MockEngine names resources by the secret's value, not by its wrapper."""

    def program():
        AlibabaOssTarget(
            "oss-target",
            {"region": "cn-hangzhou", "bucket_name": pulumi.Output.secret("acme-secret")},
        )
        return TencentCosSource(
            "cos-source",
            {
                "region": "ap-guangzhou",
                "bucket_name": "uploads",
                "app_id": pulumi.Output.secret("1250000000"),
                "sink_url": "https://sink.example/events",
            },
            package_dir=str(tmp_path),
        )

    source = pulumi_mocks.run(program)
    assert pulumi_mocks.one("alicloud:oss/bucket:Bucket").id == "acme-secret"
    assert pulumi_mocks.one("tencentcloud:Cos/bucket:Bucket").id == "uploads-1250000000"
    assert pulumi_mocks.value(source.bucket_name) == "uploads-1250000000"


def test_none_for_an_optional_field_means_not_set(pulumi_mocks):
    """`config.get(...)` answers None for an unset key: the default applies, plain or resolved."""

    def program():
        nothing = _values(flag="x")["flag"].apply(lambda _: None)
        AlibabaOssTarget(
            "plain",
            {
                "region": "cn-hangzhou",
                "bucket_name": "acme-plain",
                "key_prefix": None,
                "use_internal_endpoint": None,
                "runtime": {"namespace": None, "memory_limit": None},
            },
        )
        return AlibabaOssTarget(
            "resolved",
            {
                "region": "cn-hangzhou",
                "bucket_name": "acme-resolved",
                "key_prefix": nothing,
                "use_internal_endpoint": nothing,
                "force_destroy": nothing,
                "key_template": nothing,
                "runtime": {"namespace": nothing, "memory_limit": nothing},
            },
        )

    pulumi_mocks.run(program)
    for deployment in pulumi_mocks.of_type("kubernetes:apps/v1:Deployment"):
        env = _env(deployment)
        assert env.get("OSS_KEY_PREFIX", "") == ""
        # Unset or empty: the runtime's default template (its EnvReader reads "" as unset).
        assert env.get("OSS_KEY_TEMPLATE", "") == ""
        assert env["OSS_ENDPOINT"] == "https://oss-cn-hangzhou.aliyuncs.com"
        assert deployment.inputs["metadata"]["namespace"] == "default"
        container = deployment.inputs["spec"]["template"]["spec"]["containers"][0]
        assert container["resources"]["limits"]["memory"] == "256Mi"
    for bucket in pulumi_mocks.of_type("alicloud:oss/bucket:Bucket"):
        assert bucket.inputs.get("forceDestroy", False) is False


def test_none_for_a_required_field_is_still_refused(pulumi_mocks):
    with pytest.raises(ValueError, match=r"^bucket_name: must be a string, not null"):
        pulumi_mocks.run(
            lambda: AlibabaOssTarget("t", {"region": "cn-hangzhou", "bucket_name": None})
        )


@pytest.mark.parametrize(
    ("encryption", "key", "error"),
    [
        (None, None, None),  # an unset key known only as an Output: the OSS-managed key
        ("KMS", None, None),
        ("KMS", "key-123", None),
        (None, "key-123", "kms_key_id: needs encryption KMS"),
        ("KMS", "not a key!", "kms_key_id: 'not a key!' is not a KMS key id"),
    ],
)
def test_kms_key_id_output_is_checked_when_it_resolves(pulumi_mocks, encryption, key, error):
    """A `config.get(...)` that may be unset arrives as an Output of None: it means no key, as a
    plain None does (it used to fail at once with "needs encryption KMS")."""

    def program():
        kms = _values(key="x")["key"].apply(lambda _: key)
        args = {"region": "cn-hangzhou", "bucket_name": "acme", "kms_key_id": kms}
        if encryption:
            args["encryption"] = encryption
        return AlibabaOssTarget("oss-target", args)

    if error:
        with pytest.raises(Exception, match=error):
            pulumi_mocks.run(program)
        return
    pulumi_mocks.run(program)
    rule = pulumi_mocks.one("alicloud:oss/bucket:Bucket").inputs["serverSideEncryptionRule"]
    assert rule.get("kmsMasterKeyId") == key
    assert rule["sseAlgorithm"] == (encryption or "AES256")
    policy = pulumi_mocks.one("alicloud:ram/policy:Policy").inputs["policyDocument"]
    assert ("acs:kms:" in policy) == (key is not None)
