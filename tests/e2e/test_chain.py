"""End to end: COS notification -> SCF handler (from the built zip) -> relay -> OSS target ->
object-store emulator, every service in its own process (the same chain `make demo` runs)."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import json
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.chain import (
    BUCKET,
    FUNCTION_NAME,
    ROOT,
    SEED_CURL_BODY,
    SEED_CURL_HEADERS,
    Chain,
    ChainError,
    base_env,
    invoke_function,
    new_signing_secret,
    post,
    sample_notification,
    start_python_service,
    unpack_function,
    without_credentials,
)

DEMO = ROOT / "scripts" / "demo.py"


@pytest.fixture(scope="module")
def chain():
    with Chain() as running:
        yield running


@pytest.fixture(scope="module")
def function_dir(tmp_path_factory) -> Path:
    _package, code_dir = unpack_function(tmp_path_factory.mktemp("function"))
    return code_dir


@pytest.fixture(scope="module")
def delivered(chain, function_dir):
    """The sample notification, invoked once: (records, ids in record order)."""
    notification = sample_notification()
    invocation = invoke_function(function_dir, notification, chain.relay.url, chain.signing_secret)
    assert invocation.error is None, invocation.logs
    return notification["Records"], invocation.result["ids"]


def subject_of(record: dict) -> str:
    key = record["cos"]["cosObject"]["key"]
    bucket = record["cos"]["cosBucket"]
    return urllib.parse.unquote(key.removeprefix(f"/{bucket['appid']}/{bucket['name']}/"))


def test_every_record_is_stored_under_its_event_id_minus_credentials(chain, delivered):
    records, ids = delivered
    assert len(records) == 4 and len(set(ids)) == 4
    assert sorted(entry["key"] for entry in chain.objects()) == sorted(ids)
    for event_id, record in zip(ids, records, strict=True):
        stored = chain.object(event_id)
        assert stored.content_type == "application/json"
        assert json.loads(stored.body) == {"Records": [without_credentials(record)]}
        assert "Authorization" in json.dumps(record)  # the input did carry it
        assert b"Authorization" not in stored.body and b"q-sign" not in stored.body
        metadata = stored.metadata
        assert metadata["ce-id"] == event_id
        assert metadata["ce-type"] == "tencent-cloud-cos-event"
        assert metadata["ce-source"] == FUNCTION_NAME
        assert metadata["ce-coseventname"] == record["event"]["eventName"]
        assert urllib.parse.unquote(metadata["ce-subject"]) == subject_of(record)


def test_ids_are_deterministic_and_a_redelivery_adds_nothing(chain, function_dir, delivered):
    records, ids = delivered
    stored_before = chain.emulator_stats()["stored"]
    again = invoke_function(
        function_dir, {"Records": records}, chain.relay.url, chain.signing_secret
    )
    assert again.error is None
    assert again.result["ids"] == ids
    assert sorted(entry["key"] for entry in chain.objects()) == sorted(ids)
    # Within the relay's replay window the redelivery is acknowledged without forwarding: the sink
    # (here the OSS target) gets one copy of each event, not a second write of the same object.
    assert chain.emulator_stats()["stored"] == stored_before


def test_transient_oss_errors_are_retried_along_the_chain(chain, function_dir, delivered):
    records, ids = delivered
    record = copy.deepcopy(records[1])
    record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = "retried-record"
    chain.inject_faults({"fail_next": {"n": 3, "status": 503, "code": "SlowDown"}})
    invocation = invoke_function(
        function_dir, {"Records": [record]}, chain.relay.url, chain.signing_secret
    )
    assert invocation.error is None
    [event_id] = invocation.result["ids"]
    assert event_id not in ids
    assert json.loads(chain.object(event_id).body) == {"Records": [without_credentials(record)]}
    assert chain.emulator_stats()["errors"].get("SlowDown", 0) >= 3


def test_a_function_signing_with_another_secret_is_refused_and_stores_nothing(
    chain, function_dir, delivered
):
    record = copy.deepcopy(delivered[0][0])
    record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = "forged-record"
    keys_before = {entry["key"] for entry in chain.objects()}
    invocation = invoke_function(
        function_dir, {"Records": [record]}, chain.relay.url, new_signing_secret()
    )
    assert invocation.result is None
    assert invocation.error.startswith("DeliveryFailed: 1 of 1 CloudEvents not delivered")
    [failed] = [line for line in invocation.logs if line["msg"] == "event not delivered"]
    assert failed["status"] == 401 and failed["attempts"] == 1  # final, not retried
    assert {entry["key"] for entry in chain.objects()} == keys_before


def test_the_seed_curl_example_gets_a_binary_response_event(chain):
    reply = post(chain.target.url, SEED_CURL_BODY, SEED_CURL_HEADERS)
    assert reply.status == 200
    event_id = SEED_CURL_HEADERS["Ce-Id"]
    assert reply.headers["ce-type"] == "any.event.type.response"
    assert reply.headers["ce-source"] == f"alibabaoss/{BUCKET}"
    assert reply.headers["ce-subject"] == event_id
    assert reply.headers["ce-category"] == "success"
    assert reply.headers["content-type"] == "application/json"
    data = json.loads(reply.body)
    stored = chain.object(event_id)
    assert stored.body == SEED_CURL_BODY and stored.content_type == "application/json"
    md5 = hashlib.md5(SEED_CURL_BODY).hexdigest()
    assert data == {"bucket": BUCKET, "key": event_id, "etag": md5.upper(), "size": 37}


def test_a_service_that_cannot_start_fails_loudly_with_its_own_message(tmp_path):
    env = base_env(K_SINK="http://127.0.0.1:9/", RELAY_SIGNING_SECRET="whsec_tooshort", PORT="0")
    with pytest.raises(ChainError, match=r"relay exited with 2:\n.*RELAY_SIGNING_SECRET"):
        start_python_service("relay", "runtime.relay", env, tmp_path)


def test_the_chain_stops_every_service_cleanly(tmp_path):
    chain = Chain().start()
    services = list(chain.services)
    chain.stop()
    # 0 = each drained and exited on SIGTERM (a SIGKILL after the timeout would give -9).
    assert [service.process.returncode for service in services] == [0, 0, 0]


@pytest.mark.slow
def test_make_demo_script_exits_0_and_prints_the_verdict():
    done = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1].startswith("demo: OK — 5 events stored and verified"), lines[-5:]
    assert "any.event.type.response" in done.stdout
    assert done.stdout.count("  object ") == 5


@pytest.mark.slow
def test_ctrl_c_stops_the_demo_and_its_services():
    process = subprocess.Popen(
        [sys.executable, str(DEMO)],
        cwd=ROOT,
        env=base_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ports, seen = [], []
    try:
        for line in process.stdout:
            seen.append(line)
            if "http://127.0.0.1:" in line:
                ports.append(int(line.split("http://127.0.0.1:")[1].split("/")[0]))
            if len(ports) == 3:
                break
        assert len(ports) == 3, "".join(seen)
        children = children_of(process.pid)
        assert len(children) >= 3, children
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert rest.splitlines()[-1] == "demo: FAILED — interrupted (services stopped)"
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid`, from /proc (the services run in their own sessions)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_failing_demo_ends_with_the_failed_verdict_and_stops_what_it_started(monkeypatch, capsys):
    import tests.e2e.chain as chain_module

    started: list = []
    real_start_oss_target = chain_module.start_oss_target

    def start_oss_target(*args, **kwargs):
        started.append(real_start_oss_target(*args, **kwargs))
        return started[-1]

    def start_relay(*_args, **_kwargs):
        raise ChainError("relay exited with 2:\nrelay: invalid setting RELAY_SIGNING_SECRET")

    monkeypatch.setattr(chain_module, "start_oss_target", start_oss_target)
    monkeypatch.setattr(chain_module, "start_relay", start_relay)
    spec = importlib.util.spec_from_file_location("demo_script", DEMO)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)

    assert demo.main() == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "demo: FAILED — relay exited with 2:"
    assert lines[-2] == "  | relay: invalid setting RELAY_SIGNING_SECRET"
    [target] = started
    assert target.process.returncode == 0  # stopped (drained), not left running
