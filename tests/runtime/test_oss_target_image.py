"""The image recipe: hadolint-clean, non-root, only this runtime's code and pinned requirements;
and (where a builder exists) the built image: it starts, answers /healthz and stores one event."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

from tests.fakes.objectstore import ObjectStoreEmulator
from tests.runtime.images import RunningImage, built_image, hadolint, requirement_pins

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
    assert 'ENTRYPOINT ["python", "-m", "runtime.alibaba_oss_target"]' in text
    assert re.search(r"-r /tmp/requirements\.txt", text)


def test_built_image_answers_healthz_and_stores_an_event():
    tool, ref = built_image("alibaba-oss-target")
    secret = "image-secret-5Tq"
    with ObjectStoreEmulator(credentials={"image-ak": secret}, buckets=["image-bucket"]) as store:
        running = RunningImage(
            tool,
            ref,
            {
                "PORT": "0",
                "OSS_ENDPOINT": store.endpoint,
                "OSS_BUCKET": "image-bucket",
                "OSS_ACCESS_KEY_ID": "image-ak",
                "OSS_ACCESS_KEY_SECRET": secret,
            },
        )
        try:
            with urllib.request.urlopen(f"{running.url}/healthz", timeout=10) as answer:
                assert answer.status == 200
            event = urllib.request.Request(
                running.url,
                data=b'{"message":"Hello from TriggerMesh!"}',
                headers={
                    "Content-Type": "application/json",
                    "Ce-Specversion": "1.0",
                    "Ce-Type": "any.event.type",
                    "Ce-Source": "some.origin/intance",
                    "Ce-Id": "536808d3-88be-4077-9d7a-a3f162705f79",
                },
                method="POST",
            )
            with urllib.request.urlopen(event, timeout=30) as answer:
                assert answer.status == 200
                assert answer.headers["ce-type"] == "any.event.type.response"
                assert json.loads(answer.read())["key"] == "536808d3-88be-4077-9d7a-a3f162705f79"
            stored = store.get("image-bucket", "536808d3-88be-4077-9d7a-a3f162705f79")
            assert stored is not None and stored.body == b'{"message":"Hello from TriggerMesh!"}'
        finally:
            running.stop()
