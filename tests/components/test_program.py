"""The program (`__main__.py`) run under the mocks, once per stack file and for edge configs."""

import json
import os
import shutil
import subprocess
import sys

import pulumi
import pytest

from components.check.stack_file import engine_config, load_project, read_stack
from tests.pulumi_mocks import REPO_ROOT, is_secret, plain_strings, project_name, unwrap

PROGRAM = REPO_ROOT / "__main__.py"
STACKS = sorted(
    p.name[len("Pulumi.") : -len(".yaml")] for p in (REPO_ROOT / "stacks").glob("Pulumi.*.yaml")
)
OSS_OUTPUTS = {
    "ossTargetBucket",
    "ossTargetEndpoint",
    "ossTargetUrl",
    "ossTargetSecretName",
    "ossTargetRoleArn",
}
COS_OUTPUTS = {
    "cosSourceBucket",
    "cosSourceFunction",
    "cosSourceFunctionNamespace",
    "cosSourceTriggers",
    "cosSourceRelayUrl",
}


def _config(values: dict) -> dict[str, str]:
    return {
        f"{project_name()}:{k}": json.dumps(v) if isinstance(v, dict) else v
        for k, v in values.items()
    }


def _assert_explicit_providers(engine) -> None:
    providers = {
        r.typ.rsplit(":", 1)[-1]: r
        for r in engine.resources
        if r.typ.startswith("pulumi:providers:")
    }
    for r in engine.resources:
        package = r.typ.split(":", 1)[0]
        if r.custom and package in ("alicloud", "tencentcloud", "kubernetes"):
            assert r.provider.startswith(providers[package].urn + "::"), r.urn


def _secret_values(value):
    # Whole inputs get wrapped when any part is secret; the secret leaves are the wrapped strings
    # the providers answer (generated keys), and anything derived embeds them.
    if is_secret(value):
        if isinstance(unwrap(value), str):
            yield unwrap(value)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _secret_values(v)
    elif isinstance(value, list):
        for v in value:
            yield from _secret_values(v)


def _assert_no_secret_in_plain_text(engine) -> None:
    """No value the engine holds as secret (generated keys, supplied secrets) appears outside a
    secret wrapper in any recorded input: Deployment env, SCF environment, ConfigMaps, anything."""
    secrets = {
        s for r in engine.resources for part in (r.inputs, r.outputs) for s in _secret_values(part)
    }
    assert secrets, "the run holds secrets to look for"
    for r in engine.resources:
        leaked = secrets & set(plain_strings(r.inputs))
        assert not leaked, f"{r.urn} carries a secret in plain text"
        for s in plain_strings(r.inputs):
            assert not any(secret in s for secret in secrets), f"{r.urn} embeds a secret"


def test_there_are_dev_and_prod_stacks():
    assert {"dev", "prod"} <= set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_program_runs_for_each_stack_file(pulumi_mocks, stack):
    project = load_project(REPO_ROOT)
    config, secret_keys = engine_config(project, read_stack(project, stack))
    exports = pulumi_mocks.run_program(PROGRAM, config, secret_keys)

    assert set(exports) == OSS_OUTPUTS | COS_OUTPUTS
    assert pulumi_mocks.one("cloudevents-connectors:index:AlibabaOssTarget")
    assert pulumi_mocks.one("cloudevents-connectors:index:TencentCosSource")
    _assert_explicit_providers(pulumi_mocks)
    stack_values = read_stack(project, stack).values
    alicloud = pulumi_mocks.one("pulumi:providers:alicloud")
    assert alicloud.inputs["region"] == stack_values["ossTarget"]["region"]
    tencent = pulumi_mocks.one("pulumi:providers:tencentcloud")
    assert tencent.inputs["region"] == stack_values["cosSource"]["region"]
    assert exports["ossTargetUrl"].endswith(".svc.cluster.local")
    # Rotation relies on Secrets being replaced (new auto-name), never mutated in place.
    # (Provider inputs travel as strings.)
    assert pulumi_mocks.one("pulumi:providers:kubernetes").inputs["enableSecretMutable"] == "false"
    _assert_no_secret_in_plain_text(pulumi_mocks)
    assert all(t.startswith('{"event":"cos:') for t in exports["cosSourceTriggers"])


def test_prod_is_protected_and_autoscaled(pulumi_mocks):
    project = load_project(REPO_ROOT)
    config, secret_keys = engine_config(project, read_stack(project, "prod"))
    exports = pulumi_mocks.run_program(PROGRAM, config, secret_keys)
    assert pulumi_mocks.one("alicloud:oss/bucket:Bucket").protect
    assert pulumi_mocks.one("tencentcloud:Cos/bucket:Bucket").protect
    for hpa in pulumi_mocks.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler"):
        assert hpa.inputs["spec"]["minReplicas"] >= 2, hpa.urn
        assert hpa.inputs["spec"]["maxReplicas"] > hpa.inputs["spec"]["minReplicas"], hpa.urn
    assert len(pulumi_mocks.of_type("kubernetes:policy/v1:PodDisruptionBudget")) == 2
    assert exports["cosSourceRelayUrl"] == "https://cos-relay.example.com/"
    assert pulumi_mocks.of_type("kubernetes:core/v1:Namespace") == []  # createNamespace: false


def test_dev_is_not_protected_and_creates_its_namespace(pulumi_mocks):
    project = load_project(REPO_ROOT)
    config, secret_keys = engine_config(project, read_stack(project, "dev"))
    pulumi_mocks.run_program(PROGRAM, config, secret_keys)
    assert not pulumi_mocks.one("alicloud:oss/bucket:Bucket").protect
    namespace = pulumi_mocks.one("kubernetes:core/v1:Namespace")
    target = pulumi_mocks.one("cloudevents-connectors:index:AlibabaOssTarget")
    assert namespace.urn in target.dependencies


def test_empty_config_deploys_nothing_and_says_so(pulumi_mocks):
    assert pulumi_mocks.run_program(PROGRAM, {}) == {}
    assert pulumi_mocks.resources == []
    assert [w for w in pulumi_mocks.warnings if "deploys nothing" in w]


def test_a_stack_with_a_connector_does_not_warn(pulumi_mocks):
    cos = {"region": "ap-guangzhou", "bucketName": "uploads", "sinkUrl": "https://s.example/"}
    pulumi_mocks.run_program(PROGRAM, _config({"cosSource": cos}))
    assert pulumi_mocks.warnings == []


def test_a_sink_only_source_needs_no_cluster(pulumi_mocks, tmp_path):
    cos = {
        "region": "ap-guangzhou",
        "bucketName": "uploads",
        "appId": "1250000000",
        "sinkUrl": "https://sink.example/",
    }
    exports = pulumi_mocks.run_program(PROGRAM, _config({"cosSource": cos}))
    assert set(exports) == COS_OUTPUTS
    assert not [
        r
        for r in pulumi_mocks.resources
        if r.typ.startswith(("kubernetes:", "pulumi:providers:kubernetes"))
    ]
    assert not [
        r
        for r in pulumi_mocks.resources
        if r.typ.startswith(("alicloud:", "pulumi:providers:alicloud"))
    ]


def test_supplied_secrets_stay_secret(pulumi_mocks):
    secret = "supplied-access-key-secret-0123"
    signing = "whsec_" + "B" * 43 + "="
    config = _config(
        {
            "ossTarget": {
                "region": "cn-hangzhou",
                "bucketName": "acme-x",
                "accessKeyId": "LTAI5tAAAAAAAAAAAAAA",
            },
            "cosSource": {
                "region": "ap-guangzhou",
                "bucketName": "uploads",
                "relay": {"sinkUrl": "http://broker.ce.svc.cluster.local/"},
            },
            "ossTargetAccessKeySecret": secret,
            "cosSourceRelaySigningSecret": signing,
        }
    )
    keys = [
        f"{project_name()}:ossTargetAccessKeySecret",
        f"{project_name()}:cosSourceRelaySigningSecret",
    ]
    pulumi_mocks.run_program(PROGRAM, config, keys)
    assert not [r for r in pulumi_mocks.resources if r.typ.startswith("alicloud:ram/")]
    assert pulumi_mocks.of_type("random:index/randomBytes:RandomBytes") == []
    function = pulumi_mocks.one("tencentcloud:Scf/function:Function")
    assert function.plain_inputs["environment"]["SINK_SIGNING_SECRET"] == signing
    for r in pulumi_mocks.resources:
        strings = set(plain_strings(r.inputs))
        assert secret not in strings and signing not in strings, r.urn


def test_invalid_config_fails_before_anything_is_declared(pulumi_mocks):
    config = _config({"ossTarget": {"region": "cn-hangzhou", "bucketName": "Bad_Name"}})
    # RunError: `pulumi up` shows the message without a Python stack trace.
    with pytest.raises(pulumi.RunError, match=r"^stack dev: ossTarget\.bucketName: "):
        pulumi_mocks.run_program(PROGRAM, config)
    assert pulumi_mocks.resources == []


_DECLARE = """
import json, sys
from pathlib import Path
root = Path(sys.argv[1])
sys.path.insert(0, str(root))
from components.check.engine import MockEngine, unwrap
from components.check.stack_file import engine_config, load_project, read_stack
project = load_project(root)
engine = MockEngine(project.name, stack="dev", preview=False).install()
out = {}
for stack in sys.argv[2:]:
    engine.reset()
    config, keys = engine_config(project, read_stack(project, stack))
    engine.run_program(project.main, config, keys)
    out[stack] = sorted([r.typ, r.name, unwrap(r.inputs)] for r in engine.resources)
print(json.dumps(out, sort_keys=True))
"""


def test_two_checkouts_declare_the_same_inputs(tmp_path):
    """The PR preview runs from another folder than a laptop: every input (the function's code
    location above all) must be the same, or every other checkout diffs and redeploys."""
    home = tmp_path / "home"
    home.mkdir()
    declared = []
    for checkout in ("checkout-a", "nested/elsewhere/checkout-b"):
        root = tmp_path / checkout
        shutil.copytree(
            REPO_ROOT,
            root,
            ignore=shutil.ignore_patterns(".venv", ".git", ".build", "tests", "bench", "docs"),
        )
        result = subprocess.run(
            [sys.executable, "-c", _DECLARE, str(root), *STACKS],
            cwd=root,
            env={**os.environ, "HOME": str(home), "PYTHONPATH": ""},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        declared.append(json.loads(result.stdout.strip().splitlines()[-1]))
    assert declared[0] == declared[1]
    text = json.dumps(declared[0])
    assert str(tmp_path) not in text  # no checkout folder (or home) in any input
    zip_files = [
        inputs["zipFile"]
        for stack in declared[0].values()
        for typ, _name, inputs in stack
        if typ == "tencentcloud:Scf/function:Function"
    ]
    assert zip_files and all(z.startswith("~/.cache/cloudevents-connectors/") for z in zip_files)


KUBECONFIG = "apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user: {token: kube-token-Qx81}\n"
OSS_BLOCK = {"region": "cn-hangzhou", "bucketName": "acme-events"}


@pytest.mark.parametrize("encrypted", [True, False])
def test_kubeconfig_contents_reach_the_provider_as_a_secret(pulumi_mocks, encrypted):
    config = _config({"kubernetes": {"kubeconfig": KUBECONFIG}, "ossTarget": OSS_BLOCK})
    # `pulumi config set --secret --path kubernetes.kubeconfig` makes the whole key secret.
    keys = [f"{project_name()}:kubernetes"] if encrypted else []
    pulumi_mocks.run_program(PROGRAM, config, keys)
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert is_secret(provider.inputs["kubeconfig"])
    assert unwrap(provider.inputs["kubeconfig"]) == KUBECONFIG
    for r in pulumi_mocks.resources:
        assert "kube-token-Qx81" not in " ".join(plain_strings(r.inputs)), r.urn
    warned = [w for w in pulumi_mocks.warnings if "kubernetes.kubeconfig" in w]
    assert bool(warned) is not encrypted  # plain text in the stack file: say how to encrypt it


def test_a_kubeconfig_path_stays_a_path(pulumi_mocks):
    config = _config({"kubernetes": {"kubeconfig": "~/.kube/ack-prod"}, "ossTarget": OSS_BLOCK})
    pulumi_mocks.run_program(PROGRAM, config)
    provider = pulumi_mocks.one("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == "~/.kube/ack-prod"
    assert not [w for w in pulumi_mocks.warnings if "kubernetes.kubeconfig" in w]


def test_other_blocks_with_an_encrypted_value_are_refused(pulumi_mocks):
    config = _config({"ossTarget": OSS_BLOCK})
    with pytest.raises(Exception, match=r"ossTarget: holds an encrypted value"):
        pulumi_mocks.run_program(PROGRAM, config, [f"{project_name()}:ossTarget"])


def test_the_checker_reads_an_encrypted_kubeconfig(tmp_path):
    from components.check.stack_file import SECRET_PLACEHOLDER

    (tmp_path / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    name = load_project(tmp_path).name
    (tmp_path / "stacks" / "Pulumi.enc.yaml").write_text(
        f"config:\n  {name}:kubernetes:\n    kubeconfig:\n      secure: v1:abc\n"
        f"  {name}:ossTarget:\n    region: cn-hangzhou\n    bucketName: acme-events\n"
    )
    project = load_project(tmp_path)
    values = read_stack(project, "enc")
    assert values.values["kubernetes"] == {"kubeconfig": SECRET_PLACEHOLDER}
    config, keys = engine_config(project, values)
    assert config[f"{name}:kubernetes"] == json.dumps({"kubeconfig": SECRET_PLACEHOLDER})
    assert f"{name}:kubernetes" in keys
