"""The two Dockerfiles follow one layout, and the built relay image (where a builder exists) starts,
answers /healthz and forwards one signed event to its sink."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from tests.fakes.sink import CloudEventsSink
from tests.runtime import relay_contract
from tests.runtime.images import RunningImage, built_image, hadolint

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "alibaba_oss_target": ROOT / "runtime/alibaba_oss_target/Dockerfile",
    "relay": ROOT / "runtime/relay/Dockerfile",
}


def _instructions(path: Path, runtime: str) -> list[str]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped) with the
    runtime's own name replaced, so two runtimes' recipes compare equal when they share a layout."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [line.replace(runtime, "<runtime>") for line in lines if line and line[0] != "#"]


def test_both_dockerfiles_follow_one_layout():
    # Multi-stage (venv, then slim), pinned bases, the same user, port, signal and the exec-form
    # ENTRYPOINT the components' `command` overrides.
    oss, relay = (_instructions(path, name) for name, path in DOCKERFILES.items())
    assert oss == relay
    assert [line for line in oss if line.startswith("FROM ")] == [
        "FROM python:3.11.14-bookworm AS venv",
        "FROM python:3.11.14-slim-bookworm",
    ]
    assert 'ENTRYPOINT ["python", "-m", "runtime.<runtime>"]' in oss
    assert not any(line.startswith("CMD") for line in oss)


def test_layout_comparison_sees_a_difference(tmp_path):
    # Guards the test above: a recipe that differs in one instruction does not compare equal.
    changed = tmp_path / "Dockerfile"
    changed.write_text(DOCKERFILES["relay"].read_text().replace("USER 10001", "USER 10002"))
    assert _instructions(changed, "relay") != _instructions(DOCKERFILES["relay"], "relay")


def test_both_dockerfiles_pass_hadolint():
    for path in DOCKERFILES.values():
        assert hadolint(path) == [], path


def test_built_image_answers_healthz_and_forwards_an_event():
    tool, ref = built_image("relay")
    with CloudEventsSink() as sink:
        running = RunningImage(
            tool,
            ref,
            {"PORT": "0", "K_SINK": sink.url, "RELAY_SIGNING_SECRET": relay_contract.SECRET},
        )
        try:
            with urllib.request.urlopen(f"{running.url}/healthz", timeout=10) as answer:
                assert answer.status == 200
            # Signed exactly as the SCF function signs (structured mode, webhook-id = event id).
            headers, body = relay_contract.signed_request()
            request = urllib.request.Request(running.url, data=body, headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 202
            assert [event.id for event in sink.events] == [relay_contract.EVENT["id"]]
        finally:
            running.stop()
