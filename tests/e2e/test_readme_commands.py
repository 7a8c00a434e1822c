"""The README's curl example, run exactly as written (only the address changed) against a live OSS
target and the emulator: the answer and the stored object are the ones the README shows."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e import chain

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
PREFIX = "events/"  # the dev stack's keyPrefix, which the README's narrative assumes
EVENT_ID = "536808d3-88be-4077-9d7a-a3f162705f79"


def _documented_curl() -> str:
    blocks = re.findall(r"```sh\n(curl .*?)```", README, re.S)
    assert len(blocks) == 1, "the README shows one curl example"
    return blocks[0]


def _documented_response() -> list[str]:
    shown = README[README.index("< HTTP/1.1 200 OK") :].split("```")[0]
    return [line[2:] for line in shown.splitlines() if line.startswith("< ")]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not found on PATH")
@pytest.mark.slow
def test_readme_curl_example_stores_the_event_and_answers_as_shown():
    with chain.Chain(target_env={"OSS_KEY_PREFIX": PREFIX}) as running:
        command = _documented_curl().replace("localhost:8080", running.target.url.rstrip("/"))
        result = subprocess.run(
            ["bash", "-c", command], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        answer = {
            line[2:].split(":", 1)[0].lower(): line[2:].split(":", 1)[-1].strip()
            for line in result.stderr.splitlines()
            if line.startswith("< ") and ":" in line
        }
        assert "< HTTP/1.1 200 OK" in result.stderr
        for line in _documented_response()[1:]:
            name, _, value = line.partition(":")
            value = value.strip()
            if name.lower() == "ce-source":
                value = f"alibabaoss/{chain.BUCKET}"  # the README's bucket is the dev stack's
            assert answer[name.lower()] == value, name
        stored = running.object(PREFIX + EVENT_ID)
        assert stored.body == b'{"message":"Hello from TriggerMesh!"}'
        assert stored.content_type == "application/json"
        shown_body = README[README.index("< HTTP/1.1 200 OK") :].split("```")[0].splitlines()[-1]
        assert result.stdout == shown_body.replace("acme-cloudevents-dev", chain.BUCKET)
