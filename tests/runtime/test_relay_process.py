"""`python -m runtime.relay` as a process, and its image files (Dockerfile, requirements)."""

import base64
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.runtime.images import hadolint, requirement_pins

REPO = pathlib.Path(__file__).resolve().parents[2]
RELAY = REPO / "runtime" / "relay"
SECRET = "whsec_" + base64.b64encode(b"relay-secret-key-0123456789abcd!").decode()


def relay_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("K_SINK", "RELAY_SIGNING_SECRET")}
    return {**env, "PYTHONPATH": str(REPO), **extra}


@pytest.mark.parametrize(
    ("extra", "name"),
    [
        ({"RELAY_SIGNING_SECRET": SECRET}, "K_SINK"),
        (
            {"K_SINK": "http://127.0.0.1:9/", "RELAY_SIGNING_SECRET": "whsec_!!"},
            "RELAY_SIGNING_SECRET",
        ),
        ({"K_SINK": "http://127.0.0.1:9/", "RELAY_SIGNING_SECRET": SECRET, "PORT": "x"}, "PORT"),
    ],
)
def test_invalid_settings_exit_2_with_one_line(extra, name):
    out = subprocess.run(
        [sys.executable, "-m", "runtime.relay"],
        env=relay_env(**extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"relay: invalid setting {name}")
    assert "!!" not in line and SECRET not in line


def test_serves_health_and_drains_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.relay"],
        env=relay_env(
            K_SINK="http://127.0.0.1:9/", RELAY_SIGNING_SECRET=SECRET, PORT="0", HOST="127.0.0.1"
        ),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        for line in process.stdout:
            record = json.loads(line)
            if record["msg"] == "listening":
                port = record["port"]
                break
        assert port, "the relay never logged that it was listening"
        for path in ("healthz", "readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=10) as answer:
                assert answer.status == 200
        process.send_signal(signal.SIGTERM)
        rest, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    messages = [json.loads(line)["msg"] for line in rest.splitlines()]
    assert "draining" in messages and messages[-1] == "stopped"
    assert SECRET not in rest + errors


def test_sigterm_with_a_stuck_sink_exits_within_the_drain_timeout_and_answers_503():
    """Kubernetes SIGKILLs after terminationGracePeriodSeconds: the relay must be gone before
    DRAIN_TIMEOUT_SECONDS + a few seconds even while the sink holds its requests, and what it cut
    short is answered 503 (not acknowledged), so the sender retries."""
    import http.client
    import threading
    import time

    from tests.fakes.sink import CloudEventsSink
    from tests.runtime.relay_contract import signed_request

    with CloudEventsSink() as sink:
        sink.set_latency(30)
        process = subprocess.Popen(
            [sys.executable, "-m", "runtime.relay"],
            env=relay_env(
                K_SINK=sink.url,
                RELAY_SIGNING_SECRET=SECRET,
                PORT="0",
                HOST="127.0.0.1",
                DRAIN_TIMEOUT_SECONDS="1",
                DELIVERY_TIMEOUT_SECONDS="60",
                DELIVERY_RETRY_BUDGET_SECONDS="60",
            ),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            for line in process.stdout:
                record = json.loads(line)
                if record["msg"] == "listening":
                    port = record["port"]
                    break
            answers = []

            def send():
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                headers, body = signed_request()
                conn.request("POST", "/", body=body, headers=headers)
                answers.append(conn.getresponse().status)

            sender = threading.Thread(target=send)
            sender.start()
            time.sleep(1.0)  # the relay is now waiting on the sink (which answers after 30 s)
            assert answers == []
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
            took = time.monotonic() - started
            sender.join(10)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0
    assert took < 1 + 3, f"took {took:.1f} s"
    assert answers == [503]


def test_dockerfile_passes_hadolint():
    assert hadolint(RELAY / "Dockerfile") == []


def test_dockerfile_copies_only_the_relay_and_its_core():
    text = (RELAY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", text, re.M), "a pinned base"
    # What comes from the build context (the venv stage's `COPY --from=venv` is not).
    sources = [
        line.split()[1]
        for line in text.splitlines()
        if line.startswith("COPY ") and not line.startswith("COPY --from=")
    ]
    assert sources == [
        "runtime/relay/requirements.txt",
        "runtime/__init__.py",
        "runtime/receiver/",
        "runtime/relay/",
    ]
    assert re.search(r"^USER \d+$", text, re.M), "must run as a non-root user"
    assert "EXPOSE 8080" in text
    assert 'ENTRYPOINT ["python", "-m", "runtime.relay"]' in text


def test_requirements_are_pinned_and_match_the_runtime_union():
    relay = requirement_pins(RELAY / "requirements.txt")
    assert {"aiohttp", "cloudevents", "prometheus-client"} <= set(relay)
    union = requirement_pins(REPO / "runtime" / "requirements.txt")
    for name, version in relay.items():
        if name in union:
            assert union[name] == version, f"{name} differs from runtime/requirements.txt"


def test_relay_imports_nothing_outside_its_image():
    """The image holds runtime/__init__.py, runtime/receiver and runtime/relay only."""
    code = (
        "import sys, runtime.relay.__main__ as m\n"
        "own = sorted({n.split('.')[1] for n in sys.modules if n.startswith('runtime.')})\n"
        "print(own)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['receiver', 'relay']"


def test_relay_needs_no_distribution_beyond_its_requirements():
    """Every third-party module the relay loads comes from runtime/relay/requirements.txt or
    what those distributions depend on, so the image (which installs only that file) runs it."""
    code = r"""
import importlib.metadata as md, json, re, sys
before = set(sys.modules)  # what the interpreter's own start-up loaded (site hooks)
import runtime.relay.__main__, runtime.relay.app
owners = md.packages_distributions()
used = set()
for name, module in list(sys.modules.items()):
    path = getattr(module, "__file__", None) or ""
    if "site-packages" in path and "." not in name and name not in before:
        used.update(owners.get(name, [name]))
def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()
wanted = [line.split("==")[0].strip() for line in open(sys.argv[1])
          if line.strip() and not line.startswith("#")]
allowed, todo = set(), list(wanted)
while todo:
    dist = norm(todo.pop())
    if dist in allowed:
        continue
    allowed.add(dist)
    try:
        requirements = md.requires(dist) or []
    except md.PackageNotFoundError:  # a dependency for other Pythons (environment markers)
        continue
    for requirement in requirements:
        if "extra ==" not in requirement:
            todo.append(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0])
print(json.dumps(sorted({norm(d) for d in used} - allowed)))
"""
    out = subprocess.run(
        [sys.executable, "-c", code, str(RELAY / "requirements.txt")],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(out.stdout) == []
