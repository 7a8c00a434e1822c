"""The README's first command stops cleanly where the Pulumi CLI is missing, and otherwise drives
the CLI with a local file backend and the passphrase secrets provider."""

import re
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


# --- `make up` / `make preview` as the README runs them ------------------------------------------

_MAKE_TOOLS = ("bash", "env", "dirname", "ls", "sed", "tr", "mkdir", "cat", "test", "touch", "cp")


def _vars(**values: object) -> list[str]:
    return [f"{name}={value}" for name, value in values.items()]


def _make(tmp_path: Path, target: str, *, with_fake_pulumi: bool, stack: str = "dev"):
    """Runs `make <target>` with a PATH of only the basic tools (plus a recording `pulumi` when
    asked), a fresh virtualenv folder and a recording stand-in for the Python that creates it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    make = subprocess.run(["which", "make"], capture_output=True, text=True).stdout.strip()
    for tool in _MAKE_TOOLS:
        target_path = subprocess.run(["which", tool], capture_output=True, text=True).stdout
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(target_path.strip())
    log = tmp_path / "calls.log"
    # `python -m venv DIR` makes DIR/bin/python, a copy of this recorder; every call is logged.
    python = tmp_path / "python3"
    python.write_text(
        "#!/bin/bash\n"
        f'echo "python $*" >> {log}\n'
        'if [[ "$1 $2" == "-m venv" ]]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; fi\n'
    )
    python.chmod(0o755)
    if with_fake_pulumi:
        fake = bin_dir / "pulumi"
        fake.write_text(f'#!/bin/bash\necho "pulumi $*" >> {log}\n')
        fake.chmod(0o755)
    venv = tmp_path / "venv"
    result = subprocess.run(
        [make, "--no-print-directory", target, *_vars(STACK=stack, VENV=venv, PYTHON=python)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "PULUMI_CONFIG_PASSPHRASE": "x"},
        check=False,
        timeout=60,
    )
    return result, (log.read_text().splitlines() if log.exists() else []), venv


def test_make_preview_without_cli_stops_before_installing_anything(tmp_path):
    result, calls, venv = _make(tmp_path, "preview", with_fake_pulumi=False)
    assert result.returncode != 0
    assert "pulumi` CLI is not installed" in result.stderr
    assert calls == []
    assert not venv.exists()


def test_make_up_with_unknown_stack_stops_before_installing_anything(tmp_path):
    result, calls, venv = _make(tmp_path, "up", with_fake_pulumi=True, stack="nope")
    assert result.returncode != 0
    assert "stacks/Pulumi.nope.yaml" in result.stderr
    assert calls == []
    assert not venv.exists()


def test_make_preview_installs_only_the_program_requirements(tmp_path):
    result, calls, venv = _make(tmp_path, "preview", with_fake_pulumi=True)
    assert result.returncode == 0, result.stderr
    assert calls == [
        f"python -m venv {venv}",
        "python -m pip install --quiet -r requirements.txt",
        "pulumi stack select --create --secrets-provider passphrase dev",
        "pulumi preview --stack dev",
    ]
    # A second run finds the virtualenv up to date and goes straight to the CLI.
    again, calls_again, _ = _make(tmp_path, "preview", with_fake_pulumi=True)
    assert again.returncode == 0, again.stderr
    assert calls_again[len(calls) :] == calls[2:]


def test_program_requirements_leave_the_test_toolchain_out():
    program = (ROOT / "requirements.txt").read_text()
    for tool in ("pytest", "ruff", "hadolint", "check-jsonschema", "zizmor", "actionlint"):
        assert tool not in program


# --- `make images` -------------------------------------------------------------------------------

BUILD_IMAGES = ROOT / "scripts" / "build-images.sh"


def _build_images(tmp_path: Path, fakes: dict[str, str], **env: str):
    """scripts/build-images.sh with a PATH of the basic tools plus `fakes` (name -> bash body)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "env", "dirname", "sed", "cat"):
        target = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(target)
    for name, body in fakes.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}\n")
        (bin_dir / name).chmod(0o755)
    return subprocess.run(
        [str(bin_dir / "bash"), str(BUILD_IMAGES)],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), **env},
        check=False,
        timeout=30,
    )


def test_make_images_without_a_builder_says_what_to_install(tmp_path):
    result = _build_images(tmp_path, {})
    assert result.returncode == 127
    assert "needs docker (with its daemon running) or buildah" in result.stderr
    assert "apt-get install buildah" in result.stderr


def test_make_images_says_when_docker_has_no_daemon(tmp_path):
    result = _build_images(tmp_path, {"docker": "exit 1"})
    assert result.returncode == 127
    assert "its daemon is not reachable" in result.stderr


def test_make_images_builds_both_dockerfiles_from_the_root(tmp_path):
    log = tmp_path / "builds.log"
    recorder = f'echo "$PWD | $*" >> {log}'
    # docker without a daemon: buildah is used.
    result = _build_images(tmp_path, {"docker": "exit 1", "buildah": recorder})
    assert result.returncode == 0, result.stderr
    version = re.search(r'^version = "(.+)"$', (ROOT / "pyproject.toml").read_text(), re.M)[1]
    prefix = "ghcr.io/cloudevents-connectors/"
    assert result.stdout.split() == [
        f"{prefix}alibaba-oss-target:{version}",
        f"{prefix}relay:{version}",
    ]
    assert log.read_text().splitlines() == [
        f"{ROOT} | build --layers --file runtime/alibaba_oss_target/Dockerfile "
        f"--tag {prefix}alibaba-oss-target:{version} .",
        f"{ROOT} | build --layers --file runtime/relay/Dockerfile --tag {prefix}relay:{version} .",
    ]
    # docker with a daemon is preferred, and the names can be changed.
    log.unlink()
    result = _build_images(tmp_path, {"docker": recorder}, IMAGE_PREFIX="localhost/", IMAGE_TAG="t")
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == f"{ROOT} | info"
    assert calls[1:] == [
        f"{ROOT} | build --file runtime/alibaba_oss_target/Dockerfile --tag localhost/"
        "alibaba-oss-target:t .",
        f"{ROOT} | build --file runtime/relay/Dockerfile --tag localhost/relay:t .",
    ]
