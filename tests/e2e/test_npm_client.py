"""The OSS target driven by a CloudEvents client this project did not write: the npm `cloudevents`
SDK (10.0.0, pinned with its lockfile in tests/e2e/npm_client/), installed with npm in the test run.

Its HTTP transport sends every body chunked (no Content-Length). Each event is sent in binary and
structured mode with JSON, text and binary (Buffer) data; the stored objects must hold exactly the
data bytes with the event's content type, and every reply must be the target's response event.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from tests.e2e.chain import BUCKET, ROOT, Chain, start_emulator, start_oss_target

CLIENT_SOURCES = ROOT / "tests" / "e2e" / "npm_client"

JSON_DATA = {
    "message": "Hello from the npm SDK",
    "count": 42,
    "nested": {"ok": True, "list": [1, 2, 3], "none": None},
    "text": "héllo ✓ 你好",
}
TEXT_DATA = "plain text from node\nsecond line ✓\n"
BINARY_DATA = bytes(range(256)) + random.Random(6).randbytes(300 * 1024)  # every byte value


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} not found: the independent-client test needs Node.js and npm on PATH")
    return path


@pytest.fixture(scope="session")
def npm_client(tmp_path_factory) -> Path:
    """The client directory with node_modules installed from the lockfile, once per session."""
    _tool("node")
    npm = _tool("npm")
    client = tmp_path_factory.mktemp("npm-client")
    for name in ("package.json", "package-lock.json", "send.js"):
        shutil.copy(CLIENT_SOURCES / name, client / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=client,
        env=os.environ.copy(),  # the registry, proxy and cache settings of the developer
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    installed = json.loads((client / "node_modules/cloudevents/package.json").read_text())
    assert installed["version"] == "10.0.0"
    return client


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """Emulator + OSS target only; `Chain` gives the emulator's admin routes."""
    chain = Chain()
    try:
        chain.services.append(start_emulator(chain.work_dir))
        chain.services.append(start_oss_target(chain.work_dir, chain.emulator))
        yield chain
    finally:
        chain.stop()


def send(client: Path, url: str, mode: str, events: list[dict]) -> dict[str, dict]:
    """Run send.js; returns {id: {"headers": ..., "body": ...}} of the replies."""
    done = subprocess.run(
        [shutil.which("node"), "send.js"],
        cwd=client,
        input=json.dumps({"url": url, "mode": mode, "events": events}),
        env={"PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    replies = [json.loads(line) for line in done.stdout.splitlines()]
    return {reply["id"]: reply for reply in replies}


def events_for(mode: str) -> list[dict]:
    return [
        {
            "id": f"npm-{mode}-json",
            "type": "com.example.npm.json",
            "source": "/tests/npm",
            "datacontenttype": "application/json",
            "data": JSON_DATA,
        },
        {
            "id": f"npm-{mode}-text",
            "type": "com.example.npm.text",
            "source": "/tests/npm",
            "datacontenttype": "text/plain; charset=utf-8",
            "data": TEXT_DATA,
        },
        {
            "id": f"npm-{mode}-binary",
            "type": "com.example.npm.binary",
            "source": "/tests/npm",
            "datacontenttype": "application/octet-stream",
            "data_base64": base64.b64encode(BINARY_DATA).decode("ascii"),
        },
    ]


def expected_bytes(event: dict) -> bytes:
    """What the SDK puts on the wire as data: JSON.stringify for objects, the string as UTF-8,
    a Buffer as its bytes (base64-decoded by the target in structured mode)."""
    if "data_base64" in event:
        return base64.b64decode(event["data_base64"])
    if isinstance(event["data"], str):
        return event["data"].encode("utf-8")
    return json.dumps(event["data"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_npm_sdk_events_are_stored_byte_exact_and_answered(npm_client, target, mode):
    events = events_for(mode)
    replies = send(npm_client, target.target.url, mode, events)
    assert sorted(replies) == sorted(event["id"] for event in events)
    listing = {entry["key"]: entry for entry in target.objects()}
    for event in events:
        data = expected_bytes(event)
        stored = target.object(event["id"])
        assert stored.body == data, f"{event['id']}: stored bytes differ from what was sent"
        assert listing[event["id"]]["content_type"] == event["datacontenttype"]
        assert stored.metadata["ce-type"] == event["type"]
        assert stored.metadata["ce-source"] == event["source"]
        assert stored.metadata["ce-id"] == event["id"]

        reply = replies[event["id"]]
        headers = reply["headers"]
        assert headers["ce-type"] == event["type"] + ".response"
        assert headers["ce-subject"] == event["id"]
        assert headers["ce-source"] == f"alibabaoss/{BUCKET}"
        assert headers["ce-category"] == "success"
        result = json.loads(reply["body"])
        assert result["key"] == event["id"] and result["size"] == len(data)
        assert result["etag"] == listing[event["id"]]["etag"]


@pytest.mark.slow
def test_an_event_the_target_cannot_store_gets_a_problem_answer_not_a_response_event(
    npm_client, target
):
    event = {
        "id": "/absolute-key",  # OSS keys must not start with '/'
        "type": "com.example.npm.bad",
        "source": "/tests/npm",
        "datacontenttype": "text/plain",
        "data": "never stored",
    }
    reply = send(npm_client, target.target.url, "binary", [event])[event["id"]]
    assert "ce-type" not in reply["headers"]
    assert "must not start with '/'" in reply["body"]
    assert event["id"] not in {entry["key"] for entry in target.objects()}


def test_the_npm_sdk_really_sends_chunked_bodies(npm_client):
    """The premise of this file: the SDK's transport sends no Content-Length (so the target's
    chunked-body path is what the tests above exercise)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(30)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/"
        seen: list[bytes] = []

        def answer_once() -> None:
            connection, _ = server.accept()
            with connection:
                request = b""
                while b"\r\n0\r\n\r\n" not in request:
                    chunk = connection.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                seen.append(request)
                connection.sendall(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")

        thread = threading.Thread(target=answer_once)
        thread.start()
        send(npm_client, url, "binary", events_for("probe")[:1])
        thread.join(30)
    head = seen[0].split(b"\r\n\r\n", 1)[0].lower()
    assert b"transfer-encoding: chunked" in head
    assert b"content-length" not in head
