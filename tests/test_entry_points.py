"""The README's first command stops cleanly where the Pulumi CLI is missing, and otherwise drives
the CLI with a local file backend and the passphrase secrets provider."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "pulumi-stack.sh"


def _run(tmp_path: Path, *, with_fake_pulumi: bool, stack: str = "dev", extra_env=None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "env", "dirname", "ls", "sed", "tr", "mkdir", "cat"):
        target = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(target)
    log = tmp_path / "pulumi.log"
    if with_fake_pulumi:
        fake = bin_dir / "pulumi"
        # Records its arguments and the backend/secrets environment it was given.
        fake.write_text(f'#!/bin/bash\necho "$* | backend=$PULUMI_BACKEND_URL" >> {log}\n')
        fake.chmod(0o755)
    env = {"PATH": str(bin_dir), "STACK": stack, "HOME": str(tmp_path), **(extra_env or {})}
    result = subprocess.run(
        [str(bin_dir / "bash"), str(SCRIPT), "up"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=30,
    )
    return result, (log.read_text() if log.exists() else "")


def test_missing_cli_stops_with_install_instructions(tmp_path):
    result, _ = _run(tmp_path, with_fake_pulumi=False)
    assert result.returncode != 0
    assert "pulumi` CLI is not installed" in result.stderr
    assert "https://www.pulumi.com/docs/install/" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_stack_is_named(tmp_path):
    result, calls = _run(tmp_path, with_fake_pulumi=True, stack="nope")
    assert result.returncode == 2
    assert "stacks/Pulumi.nope.yaml" in result.stderr
    assert calls == ""


def test_up_uses_local_file_backend_and_passphrase_provider(tmp_path):
    result, calls = _run(
        tmp_path, with_fake_pulumi=True, extra_env={"PULUMI_CONFIG_PASSPHRASE": "x"}
    )
    assert result.returncode == 0, result.stderr
    lines = calls.splitlines()
    backend = f"backend=file://{ROOT}/.pulumi-state"
    assert lines == [
        f"stack select --create --secrets-provider passphrase dev | {backend}",
        f"up --stack dev | {backend}",
    ]


def test_user_backend_is_respected(tmp_path):
    result, calls = _run(
        tmp_path,
        with_fake_pulumi=True,
        extra_env={"PULUMI_BACKEND_URL": "s3://bucket/state", "PULUMI_CONFIG_PASSPHRASE": "x"},
    )
    assert result.returncode == 0, result.stderr
    assert all(line.endswith("backend=s3://bucket/state") for line in calls.splitlines())
