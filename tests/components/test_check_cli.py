"""`python -m components.check STACK` in its own process: it installs its own preview mocks."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pulumi_mocks import REPO_ROOT


def _check(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "components.check", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_valid_stack_lists_resources_and_outputs(stack):
    result = _check(stack)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"stacks/Pulumi.{stack}.yaml: valid" in out
    assert re.search(r"cloudevents-connectors:index:AlibabaOssTarget +oss-target ", out)
    assert "tencentcloud:Scf/function:Function" in out
    assert "alicloud:oss/bucket:Bucket" in out
    assert "ossTargetBucket = " in out


def test_preview_shows_computed_values_as_unknown(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(
        REPO_ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", ".build", "tests")
    )
    (project / "stacks" / "Pulumi.lb.yaml").write_text(
        "config:\n"
        "  cloudevents-connectors:cosSource:\n"
        "    region: ap-guangzhou\n"
        "    bucketName: uploads\n"
        "    appId: '1250000000'\n"
        "    relay:\n"
        "      sinkUrl: http://broker.ce.svc.cluster.local/\n"
    )
    result = _check("lb", "--project-dir", str(project))
    assert result.returncode == 0, result.stderr
    # The LoadBalancer's address is only known once deployed.
    assert "cosSourceRelayUrl = (unknown until deployed)" in result.stdout
    assert "random:index/randomBytes:RandomBytes" in result.stdout


def test_invalid_stack_file_exits_non_zero_naming_the_field(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bad.yaml").write_text(
        "config:\n"
        "  cloudevents-connectors:ossTarget:\n"
        "    region: cn-hangzhou\n"
        "    bucketName: Not_A_Bucket\n"
    )
    result = _check("bad", "--project-dir", str(tmp_path))
    assert result.returncode == 1
    assert "error: stack bad: ossTarget.bucketName: 'Not_A_Bucket' is not a valid OSS bucket" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


def test_unknown_stack_lists_the_known_ones():
    result = _check("nope")
    assert result.returncode == 1
    assert "no such stack file" in result.stderr and "dev" in result.stderr


def test_usage_error():
    assert _check().returncode == 2


def test_a_path_to_the_stack_file_is_accepted(tmp_path):
    result = _check("stacks/Pulumi.dev.yaml")
    assert result.returncode == 0, result.stderr
    assert "stacks/Pulumi.dev.yaml: valid" in result.stdout
    elsewhere = _check(str(REPO_ROOT / "stacks" / "Pulumi.prod.yaml"), cwd=tmp_path)
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "Pulumi.prod.yaml: valid" in elsewhere.stdout


def test_a_stack_file_outside_the_stack_config_dir_is_refused(tmp_path):
    stray = tmp_path / "Pulumi.dev.yaml"
    stray.write_text((REPO_ROOT / "stacks" / "Pulumi.dev.yaml").read_text())
    result = _check(str(stray), "--project-dir", str(REPO_ROOT))
    assert result.returncode == 1
    assert "Pulumi reads stack dev from" in result.stderr


def test_a_stack_that_deploys_nothing_warns(tmp_path):
    project = tmp_path / "project"
    shutil.copytree(
        REPO_ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", ".build", "tests")
    )
    (project / "stacks" / "Pulumi.empty.yaml").write_text(
        "config:\n  cloudevents-connectors:kubernetes:\n    namespace: ce\n"
    )
    result = _check("empty", "--project-dir", str(project))
    assert result.returncode == 0, result.stderr
    assert "warning: stack empty: this stack deploys nothing" in result.stderr


def test_missing_field_says_is_required(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.bad.yaml").write_text(
        "config:\n  cloudevents-connectors:cosSource:\n    region: ap-guangzhou\n"
        "    sinkUrl: https://sink.example/\n    events: cos:ObjectCreated:*\n"
    )
    result = _check("bad", "--project-dir", str(tmp_path))
    assert result.returncode == 1
    assert "error: stack bad: cosSource.bucketName: is required" in result.stderr


def test_an_encrypted_signing_secret_passes_the_check(tmp_path):
    # The checker cannot read the ciphertext; its stand-in must pass the component's form check.
    from components.check.stack_file import SECRET_STAND_INS
    from components.cos_source_spec import check_signing_secret

    for key, value in SECRET_STAND_INS.items():
        assert key == "cosSourceRelaySigningSecret"
        assert check_signing_secret(value) == value
