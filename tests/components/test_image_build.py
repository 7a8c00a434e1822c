"""`runtime.build` under the mocks: the docker-build Image the stack declares (context, Dockerfile,
push, platform, registry credentials as secrets) and the Deployment pinned to the pushed digest;
bad build settings fail before any resource; the stack file's `build` and its password secret."""

import re
from pathlib import Path

import pytest

from components import AlibabaOssTarget, ContainerRuntime, TencentCosSource
from components.stack_config import parse_stack_config
from tests.pulumi_mocks import REPO_ROOT, MockEngine, is_secret, plain_strings

IMAGE = "docker-build:index:Image"
PASSWORD = "acr-password-Zq81"
BUILD = {
    "registry": "registry.cn-hangzhou.aliyuncs.com",
    "repository": "acme/relay",
    "username": "acme@1234567890123456",
    "password": PASSWORD,
}
WORKLOAD = {
    "component": "relay",
    "command": ["python", "-m", "runtime.relay"],
    "env": {"K_SINK": "http://broker.ce.svc.cluster.local/"},
}
DIGEST_REF = re.compile(r"^registry\.cn-hangzhou\.aliyuncs\.com/acme/relay@sha256:[0-9a-f]{64}$")


def _runtime(options: dict, component: str = "relay") -> ContainerRuntime:
    return ContainerRuntime(
        "relay" if component == "relay" else component,
        {"runtime": {"namespace": "ce", **options}},
        workload={**WORKLOAD, "component": component},
    )


def _container(engine: MockEngine, typ: str = "kubernetes:apps/v1:Deployment") -> dict:
    return engine.one(typ).plain_inputs["spec"]["template"]["spec"]["containers"][0]


def test_build_declares_a_pushed_image_of_this_repository(pulumi_mocks):
    import pulumi

    pulumi_mocks.run(
        lambda: _runtime({"build": {**BUILD, "password": pulumi.Output.secret(PASSWORD)}})
    )
    component = pulumi_mocks.one("cloudevents-connectors:index:ContainerRuntime")
    image = pulumi_mocks.one(IMAGE)
    assert image.name == "relay-image" and image.parent == component.urn
    inputs = image.plain_inputs
    # The context is the repository root, found from the module's own file, whatever the checkout.
    assert (Path.cwd() / inputs["context"]["location"]).resolve() == REPO_ROOT
    assert (Path.cwd() / inputs["dockerfile"]["location"]).resolve() == (
        REPO_ROOT / "runtime/relay/Dockerfile"
    )
    assert inputs["push"] is True
    assert inputs["platforms"] == ["linux/amd64"]
    assert inputs["tags"] == ["registry.cn-hangzhou.aliyuncs.com/acme/relay:dev"]
    # The password is a secret, so the engine holds the registries input as one (never plain).
    assert is_secret(image.inputs["registries"])
    assert inputs["registries"] == [
        {
            "address": "registry.cn-hangzhou.aliyuncs.com",
            "username": "acme@1234567890123456",
            "password": PASSWORD,
        }
    ]
    for r in pulumi_mocks.resources:
        assert PASSWORD not in set(plain_strings(r.inputs)), r.urn


def test_deployment_runs_the_pushed_digest(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime({"build": BUILD}))
    digest = pulumi_mocks.one(IMAGE).outputs["digest"]
    image = _container(pulumi_mocks)["image"]
    assert DIGEST_REF.match(image), image
    # The digest, so a rebuilt runtime (a new digest) is a new pod template: the pods roll.
    assert image == f"registry.cn-hangzhou.aliyuncs.com/acme/relay@{digest}"


def test_knative_service_runs_the_pushed_digest(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime({"mode": "knative", "build": BUILD}))
    image = _container(pulumi_mocks, "kubernetes:serving.knative.dev/v1:Service")["image"]
    assert DIGEST_REF.match(image), image


def test_without_credentials_the_machine_login_is_used(pulumi_mocks):
    build = {"registry": "ccr.ccs.tencentyun.com", "repository": "acme/relay"}
    build["platform"], build["tag"] = "linux/arm64", "v1.2"
    pulumi_mocks.run(lambda: _runtime({"build": build}))
    inputs = pulumi_mocks.one(IMAGE).plain_inputs
    assert "registries" not in inputs
    assert inputs["platforms"] == ["linux/arm64"]
    assert inputs["tags"] == ["ccr.ccs.tencentyun.com/acme/relay:v1.2"]


def test_each_connector_builds_its_own_dockerfile(pulumi_mocks):
    target_build = {"registry": "registry.cn-hangzhou.aliyuncs.com", "repository": "acme/target"}
    relay_build = {"registry": "ccr.ccs.tencentyun.com", "repository": "acme/relay"}

    def program():
        AlibabaOssTarget(
            "oss-target",
            {
                "region": "cn-hangzhou",
                "bucket_name": "acme-events",
                "runtime": {"namespace": "ce", "build": target_build},
            },
        )
        TencentCosSource(
            "cos-source",
            {
                "region": "ap-guangzhou",
                "bucket_name": "uploads",
                "app_id": "1250000000",
                "relay": {
                    "sink_url": "http://broker.ce.svc.cluster.local/",
                    "runtime": {"namespace": "ce", "build": relay_build},
                },
            },
        )

    pulumi_mocks.run(program)
    dockerfiles = {
        r.name: Path(r.plain_inputs["dockerfile"]["location"]).as_posix()
        for r in pulumi_mocks.of_type(IMAGE)
    }
    assert dockerfiles == {
        "oss-target-runtime-image": "runtime/alibaba_oss_target/Dockerfile",
        "cos-source-relay-image": "runtime/relay/Dockerfile",
    }
    images = sorted(
        r.plain_inputs["spec"]["template"]["spec"]["containers"][0]["image"]
        for r in pulumi_mocks.of_type("kubernetes:apps/v1:Deployment")
    )
    assert images[0].startswith("ccr.ccs.tencentyun.com/acme/relay@sha256:")
    assert images[1].startswith("registry.cn-hangzhou.aliyuncs.com/acme/target@sha256:")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ({**BUILD, "image": "x"}, r"^runtime\.build\.image: unknown argument"),
        ({"repository": "acme/relay"}, r"^runtime\.build\.registry: is required"),
        ({**BUILD, "registry": 5}, r"^runtime\.build\.registry: must be a string, not 5"),
        ({**BUILD, "registry": "https://r.example.com"}, r"^runtime\.build\.registry: .* not a"),
        ({**BUILD, "registry": "registry.example.com/acme"}, r"^runtime\.build\.registry: "),
        ({**BUILD, "repository": "Acme/Relay"}, r"^runtime\.build\.repository: 'Acme/Relay'"),
        ({**BUILD, "repository": "acme//relay"}, r"^runtime\.build\.repository: "),
        ({**BUILD, "platform": "windows/amd64"}, r"^runtime\.build\.platform: .* linux/arm64"),
        ({**BUILD, "tag": "-x"}, r"^runtime\.build\.tag: "),
        ({k: v for k, v in BUILD.items() if k != "password"}, r"^runtime\.build\.password: is"),
        ({k: v for k, v in BUILD.items() if k != "username"}, r"^runtime\.build\.username: is"),
        ("acme/relay", r"^runtime\.build: must be an object"),
    ],
)
def test_bad_build_fails_before_any_resource(pulumi_mocks, build, message):
    with pytest.raises(ValueError, match=message):
        pulumi_mocks.run(lambda: _runtime({"build": build}))
    assert pulumi_mocks.resources == []


def test_image_and_build_together_are_refused(pulumi_mocks):
    with pytest.raises(ValueError, match=r"^runtime\.image: conflicts with build"):
        pulumi_mocks.run(lambda: _runtime({"build": BUILD, "image": "a/b:1"}))


def test_build_needs_a_dockerfile_of_this_repository(pulumi_mocks):
    with pytest.raises(ValueError, match=r"^runtime\.build: this repository has no Dockerfile"):
        pulumi_mocks.run(lambda: _runtime({"build": BUILD}, component="other"))


# --- the stack file -------------------------------------------------------------------------------

OSS = {"region": "cn-hangzhou", "bucketName": "acme-events"}
STACK_BUILD = {"registry": "registry.cn-hangzhou.aliyuncs.com", "repository": "acme/target"}


def test_stack_build_takes_its_password_from_the_secret_key():
    oss = {**OSS, "runtime": {"build": {**STACK_BUILD, "username": "acme"}}}
    config = parse_stack_config({"ossTarget": oss}, {"ossTargetRegistryPassword": "[secret]"})
    assert config.oss_target["runtime"]["build"] == {
        **STACK_BUILD,
        "username": "acme",
        "password": "[secret]",
    }


@pytest.mark.parametrize(
    ("values", "secrets", "message"),
    [
        (
            {"ossTarget": {**OSS, "runtime": {"build": {**STACK_BUILD, "username": "acme"}}}},
            {},
            r"^ossTargetRegistryPassword: required with ossTarget\.runtime\.build\.username",
        ),
        (
            {"ossTarget": {**OSS, "runtime": {"build": {**STACK_BUILD, "password": "clear"}}}},
            {},
            r"^ossTarget\.runtime\.build\.password: not in the stack file; .*--secret",
        ),
        (
            {"ossTarget": OSS},
            {"ossTargetRegistryPassword": "[secret]"},
            r"^ossTargetRegistryPassword: is set, but ossTarget\.runtime\.build is not",
        ),
        (
            {"ossTarget": {**OSS, "runtime": {"build": {**STACK_BUILD, "platfrom": "x"}}}},
            {},
            r"^ossTarget\.runtime\.build\.platfrom: unknown key; known: registry, repository",
        ),
        (
            {
                "cosSource": {
                    "region": "ap-guangzhou",
                    "bucketName": "uploads",
                    "appId": "1250000000",
                    "sinkUrl": "https://sink.example.com/",
                }
            },
            {"cosSourceRelayRegistryPassword": "[secret]"},
            r"^cosSourceRelayRegistryPassword: is set, but cosSource has no relay",
        ),
    ],
)
def test_stack_build_errors_name_the_stack_file_path(values, secrets, message):
    with pytest.raises(ValueError, match=message):
        parse_stack_config(values, secrets)


def test_every_example_stack_builds_its_images(pulumi_mocks):
    from components.check.stack_file import engine_config, load_project, read_stack

    project = load_project(REPO_ROOT)
    for stack in ("dev", "prod"):
        pulumi_mocks.reset()
        config, secret_keys = engine_config(project, read_stack(project, stack))
        pulumi_mocks.run_program(REPO_ROOT / "__main__.py", config, secret_keys)
        images = pulumi_mocks.of_type(IMAGE)
        assert images, f"stack {stack} builds no image"
        for deployment in pulumi_mocks.of_type("kubernetes:apps/v1:Deployment"):
            container = deployment.plain_inputs["spec"]["template"]["spec"]["containers"][0]
            assert "@sha256:" in container["image"], (stack, deployment.name)


def test_two_checkouts_declare_the_same_context(monkeypatch, tmp_path):
    # Pulumi runs the program in the project folder; an absolute path of the checkout would differ
    # on every machine (and in CI) and make every preview show the image as changed.
    from components import image_build

    seen = []
    for checkout in ("one", "elsewhere/two"):
        root = tmp_path / checkout
        root.mkdir(parents=True)
        monkeypatch.setattr(image_build, "REPOSITORY_ROOT", root)
        monkeypatch.chdir(root)
        seen.append(image_build.context_location())
    assert seen == [".", "."]


def test_the_kubelet_pulls_the_built_image_with_the_build_credentials(pulumi_mocks):
    import base64
    import json

    pulumi_mocks.run(lambda: _runtime({"build": BUILD}))
    secrets = [
        r
        for r in pulumi_mocks.of_type("kubernetes:core/v1:Secret")
        if r.inputs.get("type") == "kubernetes.io/dockerconfigjson"
    ]
    (pull,) = secrets
    assert pull.name == "relay-registry-credentials"
    assert pull.inputs["metadata"]["namespace"] == "ce"
    assert is_secret(pull.inputs["stringData"])
    config = json.loads(pull.plain_inputs["stringData"][".dockerconfigjson"])
    entry = config["auths"]["registry.cn-hangzhou.aliyuncs.com"]
    assert (entry["username"], entry["password"]) == (BUILD["username"], PASSWORD)
    assert base64.b64decode(entry["auth"]).decode() == f"{BUILD['username']}:{PASSWORD}"
    pod = pulumi_mocks.one("kubernetes:apps/v1:Deployment").plain_inputs["spec"]["template"]
    assert pod["spec"]["imagePullSecrets"] == [{"name": pull.outputs["metadata"]["name"]}]
    for r in pulumi_mocks.resources:
        assert PASSWORD not in set(plain_strings(r.inputs)), r.urn


def test_knative_revisions_pull_with_the_build_credentials(pulumi_mocks):
    pulumi_mocks.run(lambda: _runtime({"mode": "knative", "build": BUILD}))
    service = pulumi_mocks.one("kubernetes:serving.knative.dev/v1:Service")
    assert service.plain_inputs["spec"]["template"]["spec"]["imagePullSecrets"]


def test_without_build_credentials_no_pull_secret_is_made(pulumi_mocks):
    build = {"registry": "ccr.ccs.tencentyun.com", "repository": "acme/relay"}
    pulumi_mocks.run(lambda: _runtime({"build": build}))
    assert pulumi_mocks.of_type("kubernetes:core/v1:Secret") == []
    pod = pulumi_mocks.one("kubernetes:apps/v1:Deployment").plain_inputs["spec"]["template"]
    assert "imagePullSecrets" not in pod["spec"]
