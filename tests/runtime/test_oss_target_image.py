"""The image recipe: hadolint-clean, non-root, only this runtime's code and pinned requirements."""

from __future__ import annotations

import re
from pathlib import Path

from tests.runtime.images import hadolint, requirement_pins

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "runtime/alibaba_oss_target/Dockerfile"
REQUIREMENTS = ROOT / "runtime/alibaba_oss_target/requirements.txt"


def test_dockerfile_has_no_hadolint_finding():
    assert hadolint(DOCKERFILE) == []


def test_hadolint_does_report_findings(tmp_path):
    # Guards the test above against a linter that silently checks nothing.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install aiohttp\n")
    codes = {finding["code"] for finding in hadolint(bad)}
    assert {"DL3007", "DL3013"} <= codes


def test_image_requirements_are_pinned_like_the_runtime_union():
    own = requirement_pins(REQUIREMENTS)
    assert set(own) == {
        "aiohttp",
        "alibabacloud-credentials",
        "alibabacloud-oss-v2",
        "cloudevents",
        "fastcrc",
        "prometheus-client",
        "python-dateutil",
    }
    union = requirement_pins(ROOT / "runtime/requirements.txt")
    assert {name: union[name] for name in own} == own


def test_image_copies_only_this_runtime_and_runs_unprivileged():
    text = DOCKERFILE.read_text()
    copied = re.findall(r"^COPY (?!--from)(\S+)", text, flags=re.MULTILINE)
    assert copied == [
        "runtime/alibaba_oss_target/requirements.txt",
        "runtime/__init__.py",
        "runtime/receiver/",
        "runtime/alibaba_oss_target/",
    ]
    assert re.search(r"^FROM python:3\.11[\w.-]*-slim", text, flags=re.MULTILINE)
    assert re.search(r"^USER 10001$", text, flags=re.MULTILINE)
    assert re.search(r"^EXPOSE 8080$", text, flags=re.MULTILINE)
    assert 'CMD ["python", "-m", "runtime.alibaba_oss_target"]' in text
    assert re.search(r"-r /tmp/requirements\.txt", text)
