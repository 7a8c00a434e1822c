"""The OSS target served for real (in-process, ephemeral port) against the object-store emulator,
through the real oss2 SDK: the HTTP contract, every error class, retries, logs and metrics."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import random
import socket
import time

import pytest
import requests

from runtime.alibaba_oss_target.app import build_target, credentials_source
from runtime.alibaba_oss_target.credentials import RefreshingCredentials
from runtime.alibaba_oss_target.settings import read_settings
from runtime.receiver import BackgroundServer, EnvReader, configure_logging
from runtime.receiver.retry import RetryPolicy
from tests.fakes.objectstore import ObjectStoreEmulator

BUCKET = "test-bucket"
SECRET = "test-sk-Zq8vRkP2"
STS_SECRET = "sts-sk-4TqLw9"
STS_TOKEN = "sts-token-Hn3Xe7Yb"
SEED_ID = "536808d3-88be-4077-9d7a-a3f162705f79"
SEED_BODY = b'{"message":"Hello from TriggerMesh!"}'
SEED_HEADERS = {
    "Content-Type": "application/json",
    "Ce-Specversion": "1.0",
    "Ce-Type": "any.event.type",
    "Ce-Source": "some.origin/intance",
    "Ce-Id": SEED_ID,
}


@pytest.fixture
def store():
    with ObjectStoreEmulator(
        credentials={"test-ak": SECRET, "sts-ak": STS_SECRET},
        security_tokens={"sts-ak": STS_TOKEN},
        buckets=[BUCKET],
    ) as emulator:
        yield emulator


@pytest.fixture
def logs():
    """Everything the target logs, as the JSON lines it writes."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.fixture
def start_target(store):
    servers = []

    def start(credentials_timing=None, **env):
        environ = {
            "OSS_ENDPOINT": store.endpoint,
            "OSS_BUCKET": BUCKET,
            "OSS_ACCESS_KEY_ID": "test-ak",
            "OSS_ACCESS_KEY_SECRET": SECRET,
            "OSS_RETRY_BUDGET_SECONDS": "2",
            **env,
        }
        settings = read_settings(EnvReader({k: v for k, v in environ.items() if v is not None}))
        # Short waits between attempts keep the fault tests fast; the budget is the real one.
        policy = RetryPolicy(budget=settings.retry_budget_seconds, base=0.005, cap=0.05)
        credentials = None
        if credentials_timing is not None:  # short re-check / poll intervals
            credentials = RefreshingCredentials(
                credentials_source(settings),
                logging.getLogger("runtime.oss_target"),
                **credentials_timing,
            )
        receiver, uploader = build_target(settings, policy=policy, credentials=credentials)
        server = BackgroundServer(receiver, on_shutdown=[uploader.close]).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def target(start_target):
    return start_target()


def post(server, body=SEED_BODY, **headers):
    merged = {**SEED_HEADERS, **headers}
    merged = {k: v for k, v in merged.items() if v is not None}
    return requests.post(server.url, data=body, headers=merged, timeout=30)


# ---- the contract


def test_seed_curl_example_is_stored_under_the_event_id(target, store):
    response = post(target)
    assert response.status_code == 200
    stored = store.get(BUCKET, SEED_ID)
    assert stored.body == SEED_BODY
    assert stored.content_type == "application/json"
    assert stored.metadata["ce-type"] == "any.event.type"
    assert stored.metadata["ce-source"] == "some.origin/intance"
    assert stored.metadata["ce-id"] == SEED_ID
    # The answer is a binary-mode response event.
    assert response.headers["ce-type"] == "any.event.type.response"
    assert response.headers["ce-source"] == f"alibabaoss/{BUCKET}"
    assert response.headers["ce-subject"] == SEED_ID
    assert response.headers["ce-category"] == "success"
    assert response.headers["ce-id"] != SEED_ID
    assert response.json() == {
        "bucket": BUCKET,
        "key": SEED_ID,
        "etag": stored.etag,
        "size": len(SEED_BODY),
    }


def test_binary_data_is_stored_byte_exact_with_its_content_type(target, store):
    raw = bytes(range(256)) * 64
    assert post(target, raw, **{"Content-Type": "image/png", "Ce-Id": "img"}).ok
    stored = store.get(BUCKET, "img")
    assert stored.body == raw and stored.content_type == "image/png"


def test_no_content_type_means_octet_stream_not_a_guess_from_the_key(target, store):
    assert post(target, b"abc", **{"Content-Type": None, "Ce-Id": "report.json"}).ok
    assert store.get(BUCKET, "report.json").content_type == "application/octet-stream"


def test_chunked_request_body(target, store):
    parts = [b"part-1;", b"part-2;", b"part-3"]
    response = requests.post(
        target.url, data=iter(parts), headers={**SEED_HEADERS, "Ce-Id": "chunked"}, timeout=30
    )
    assert response.status_code == 200
    assert store.get(BUCKET, "chunked").body == b"".join(parts)


def test_structured_mode(target, store):
    event = {
        "specversion": "1.0",
        "type": "com.example.created",
        "source": "/orders",
        "id": "order-1",
        "time": "2026-11-22T01:02:03Z",
        "datacontenttype": "application/json",
        "data": {"order": 1, "items": ["a"]},
    }
    response = requests.post(
        target.url,
        data=json.dumps(event),
        headers={"Content-Type": "application/cloudevents+json"},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["ce-type"] == "com.example.created.response"
    stored = store.get(BUCKET, "order-1")
    assert json.loads(stored.body) == event["data"]
    assert stored.content_type == "application/json"
    assert stored.metadata["ce-time"] == "2026-11-22T01:02:03Z"


def test_structured_data_base64_is_stored_decoded(target, store):
    raw = b"\x00\xff binary"
    event = {
        "specversion": "1.0",
        "type": "t",
        "source": "s",
        "id": "b64",
        "datacontenttype": "application/octet-stream",
        "data_base64": base64.b64encode(raw).decode(),
    }
    headers = {"Content-Type": "application/cloudevents+json"}
    assert requests.post(target.url, data=json.dumps(event), headers=headers, timeout=30).ok
    assert store.get(BUCKET, "b64").body == raw


def batch_of(*ids, data=None):
    return json.dumps(
        [
            {"specversion": "1.0", "type": "t", "source": "s", "id": i, "data": data or {"id": i}}
            for i in ids
        ]
    )


BATCH_HEADERS = {"Content-Type": "application/cloudevents-batch+json"}


def test_batch_stores_every_event_and_answers_with_a_batch(target, store):
    response = requests.post(
        target.url, data=batch_of("b-1", "b-2", "b-3"), headers=BATCH_HEADERS, timeout=30
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/cloudevents-batch+json"
    replies = response.json()
    assert [r["subject"] for r in replies] == ["b-1", "b-2", "b-3"]
    assert {r["category"] for r in replies} == {"success"}
    assert {r["type"] for r in replies} == {"t.response"}
    for key in ("b-1", "b-2", "b-3"):
        assert json.loads(store.get(BUCKET, key).body) == {"id": key}


def test_batch_with_a_failed_event_is_not_a_success_and_says_which(start_target, store):
    target = start_target(OSS_RETRY_BUDGET_SECONDS="0")
    store.fail_next(1, status=503, code="SlowDown")
    response = requests.post(
        target.url, data=batch_of("f-1", "f-2", "f-3"), headers=BATCH_HEADERS, timeout=30
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    replies = response.json()
    failed = [r for r in replies if r["category"] == "error"]
    assert len(failed) == 1
    failed_key = failed[0]["subject"]
    assert store.get(BUCKET, failed_key) is None
    assert sorted(store.keys(BUCKET)) == sorted({"f-1", "f-2", "f-3"} - {failed_key})
    # Redelivering the batch completes it (storing is idempotent).
    again = requests.post(
        target.url, data=batch_of("f-1", "f-2", "f-3"), headers=BATCH_HEADERS, timeout=30
    )
    assert again.status_code == 200
    assert sorted(store.keys(BUCKET)) == ["f-1", "f-2", "f-3"]


def test_batch_with_an_invalid_key_writes_nothing(target, store):
    response = requests.post(
        target.url, data=batch_of("ok-1", "/bad", "ok-2"), headers=BATCH_HEADERS, timeout=30
    )
    assert response.status_code == 400
    assert response.json()["index"] == 1
    assert store.keys(BUCKET) == []


def test_batch_with_one_id_from_two_sources_writes_nothing(target, store):
    # Both would land under one key and the later upload would silently replace the other.
    events = [
        {"specversion": "1.0", "type": "t", "source": "a", "id": "dup", "data": {"n": 1}},
        {"specversion": "1.0", "type": "t", "source": "b", "id": "dup", "data": {"n": 2}},
    ]
    response = requests.post(target.url, data=json.dumps(events), headers=BATCH_HEADERS, timeout=30)
    assert response.status_code == 400
    assert (response.json()["error"], response.json()["index"]) == ("invalid-key", 1)
    assert store.keys(BUCKET) == []


def test_batch_repeating_one_event_stores_it_once(target, store):
    response = requests.post(
        target.url, data=batch_of("twice", "twice"), headers=BATCH_HEADERS, timeout=30
    )
    assert response.status_code == 200
    assert store.keys(BUCKET) == ["twice"]


def test_redelivery_overwrites_the_same_key(target, store):
    assert post(target, b"first").ok
    assert post(target, b"second").ok
    assert store.keys(BUCKET) == [SEED_ID]
    assert store.get(BUCKET, SEED_ID).body == b"second"


def test_key_prefix_and_response_source(start_target, store):
    target = start_target(OSS_KEY_PREFIX="events/", RESPONSE_SOURCE="my/target")
    response = post(target)
    assert response.headers["ce-source"] == "my/target"
    assert response.headers["ce-subject"] == f"events/{SEED_ID}"
    assert store.get(BUCKET, f"events/{SEED_ID}").body == SEED_BODY


def test_store_event_keeps_the_attributes(start_target, store):
    target = start_target(STORE="event")
    assert post(target, **{"Ce-Subject": "s1"}).ok
    stored = store.get(BUCKET, SEED_ID)
    assert stored.content_type == "application/cloudevents+json"
    document = json.loads(stored.body)
    assert document["subject"] == "s1"
    assert document["type"] == "any.event.type"
    assert document["data"] == {"message": "Hello from TriggerMesh!"}


@pytest.mark.parametrize(
    "env",
    [
        {},  # V1 signing
        {"OSS_REGION": "cn-hangzhou"},  # V4 signing
        {
            "OSS_ACCESS_KEY_ID": "sts-ak",
            "OSS_ACCESS_KEY_SECRET": STS_SECRET,
            "OSS_REGION": "cn-hangzhou",
        },
    ],
    ids=["v1", "v4", "sts-v4"],
)
def test_signing_variants_are_accepted_by_the_verifying_emulator(start_target, store, env):
    if env.get("OSS_ACCESS_KEY_ID") == "sts-ak":
        env = {**env, "OSS_SECURITY_TOKEN": STS_TOKEN}
    target = start_target(**env)
    assert post(target).status_code == 200
    assert store.get(BUCKET, SEED_ID).body == SEED_BODY


# ---- failures are loud and leave the bucket unchanged


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"Ce-Id": None}, 400, "invalid-event"),
        ({"Ce-Id": ""}, 400, "invalid-event"),
        ({"Ce-Source": None}, 400, "invalid-event"),
        ({"Ce-Type": None}, 400, "invalid-event"),
        ({"Ce-Specversion": None}, 400, "invalid-event"),
        ({"Ce-Specversion": "0.3"}, 400, "invalid-event"),
        ({"Ce-Time": "not-a-time"}, 400, "invalid-event"),
        ({"Ce-Id": "x" * 1024}, 400, "invalid-key"),
        ({"Ce-Id": "/leading-slash"}, 400, "invalid-key"),
        ({"Ce-Id": "\\leading-backslash"}, 400, "invalid-key"),
        ({"Ce-Id": "tab%09inside"}, 400, "invalid-event"),
        ({"Ce-Id": "nul%00inside"}, 400, "invalid-event"),
        ({"Ce-Id": "."}, 400, "invalid-key"),
        ({"Ce-Id": ".."}, 400, "invalid-key"),
        ({"Ce-Id": "a/../b"}, 400, "invalid-key"),
        (
            {k: None for k in ("Ce-Id", "Ce-Source", "Ce-Type", "Ce-Specversion")},
            415,
            "unsupported-media-type",
        ),
    ],
)
def test_invalid_requests_write_nothing(target, store, headers, status, error):
    response = post(target, **headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert store.keys(BUCKET) == []
    assert store.stats.requests == 0


def test_invalid_structured_and_batch_write_nothing(target, store):
    headers = {"Content-Type": "application/cloudevents+json"}
    missing_id = json.dumps({"specversion": "1.0", "type": "t", "source": "s"})
    assert (
        requests.post(target.url, data=missing_id, headers=headers, timeout=30).status_code == 400
    )
    bad_batch = json.dumps([{"specversion": "1.0", "type": "t", "source": "s", "id": "a"}, {}])
    response = requests.post(target.url, data=bad_batch, headers=BATCH_HEADERS, timeout=30)
    assert response.status_code == 400 and response.json()["index"] == 1
    assert store.stats.requests == 0


def test_body_over_the_limit_is_413_without_reading_the_rest(start_target, store):
    target = start_target(MAX_BODY_BYTES="1000")
    assert post(target, b"x" * 1001).status_code == 413
    with socket.create_connection(("127.0.0.1", target.port), timeout=10) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in SEED_HEADERS.items())
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: t\r\n{head}Content-Length: 10000000\r\n\r\n".encode()
        )
        sock.sendall(b"x" * 2000)  # far less than announced: the answer must not wait for it
        assert sock.recv(100).startswith(b"HTTP/1.1 413")
    assert store.keys(BUCKET) == []


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        (403, "AccessDenied", "access-denied"),
        (403, "InvalidAccessKeyId", "invalid-access-key"),
        (404, "NoSuchBucket", "no-such-bucket"),
    ],
)
def test_oss_client_errors_are_502_with_an_error_event(target, store, status, code, reason):
    store.fail_next(1, status=status, code=code)
    response = post(target)
    assert response.status_code == 502
    assert response.headers["ce-category"] == "error"
    assert response.headers["ce-type"] == "any.event.type.response"
    data = response.json()
    assert data["code"] == code and data["reason"] == reason and data["status"] == status
    assert data["requestId"]
    assert store.keys(BUCKET) == []
    assert store.stats.requests == 1  # not retried


def test_missing_bucket_and_wrong_credentials_for_real(start_target, store):
    cases = [
        ({"OSS_BUCKET": "no-such-bucket"}, "NoSuchBucket"),
        ({"OSS_ACCESS_KEY_ID": "unknown-ak"}, "InvalidAccessKeyId"),
        ({"OSS_ACCESS_KEY_SECRET": "wrong-secret"}, "SignatureDoesNotMatch"),
        (
            {"OSS_ACCESS_KEY_ID": "sts-ak", "OSS_ACCESS_KEY_SECRET": STS_SECRET},
            "InvalidAccessKeyId",
        ),
    ]
    for env, code in cases:
        response = post(start_target(**env))
        assert response.status_code == 502, code
        assert response.json()["code"] == code
    assert store.keys(BUCKET) == []


def test_transient_failure_beyond_the_budget_is_503_with_retry_after(start_target, store):
    target = start_target(OSS_RETRY_BUDGET_SECONDS="0.3")
    store.fail_randomly(1.0, status=500, code="InternalError")
    response = post(target)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["ce-category"] == "error"
    assert response.json()["code"] == "InternalError"
    assert store.stats.requests > 1  # it did retry
    assert store.keys(BUCKET) == []


def test_injected_503s_and_dropped_connections_are_retried_until_stored(target, store):
    store.fail_next(3, status=503, code="SlowDown")
    assert post(target, **{"Ce-Id": "after-503"}).status_code == 200
    store.drop_next(2)
    assert post(target, **{"Ce-Id": "after-drop"}).status_code == 200
    store.fail_next(1, status=500, code="InternalError")
    assert post(target, **{"Ce-Id": "after-500"}).status_code == 200
    for key in ("after-503", "after-drop", "after-500"):
        assert store.get(BUCKET, key).body == SEED_BODY
    assert store.stats.drops == 2


def test_crc_mismatch_is_detected_and_the_upload_repeated(target, store):
    store.corrupt_crc_next(1)
    response = post(target)
    assert response.status_code == 200
    assert store.stats.requests == 2
    metrics = requests.get(target.url + "metrics", timeout=5).text
    assert 'oss_target_upload_attempts_total{outcome="integrity"} 1.0' in metrics


def test_random_faults_under_concurrency_lose_nothing(target, store):
    store.fail_randomly(0.15, seed=3)
    store.drop_randomly(0.05, seed=4)
    rng = random.Random(5)
    bodies = {f"r-{i}": rng.randbytes(rng.randrange(0, 4096)) for i in range(60)}
    from concurrent.futures import ThreadPoolExecutor

    def send(item):
        key, body = item
        headers = {**SEED_HEADERS, "Ce-Id": key, "Content-Type": "application/octet-stream"}
        return requests.post(target.url, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, bodies.items()))
    assert statuses == [200] * len(bodies)
    for key, body in bodies.items():
        assert store.get(BUCKET, key).body == body


# ---- operations


def test_health_readiness_and_metrics(target, store):
    assert requests.get(target.url + "healthz", timeout=5).status_code == 200
    assert requests.get(target.url + "readyz", timeout=5).status_code == 200
    post(target)
    post(target, **{"Ce-Id": None})
    store.fail_next(1, status=403, code="AccessDenied")
    post(target)
    text = requests.get(target.url + "metrics", timeout=5).text
    for line in (
        'oss_target_events_received_total{mode="binary"} 2.0',
        "oss_target_events_stored_total 1.0",
        'oss_target_events_failed_total{reason="access-denied"} 1.0',
        'oss_target_requests_rejected_total{reason="invalid-event"} 1.0',
        f"oss_target_bytes_stored_total {float(len(SEED_BODY))}",
        'oss_target_upload_duration_seconds_count{outcome="stored"} 1.0',
        "oss_target_uploads_in_flight 0.0",
        "oss_target_requests_in_flight 0.0",
        'oss_target_requests_total{status="502"} 1.0',
    ):
        assert line in text, line


def test_one_json_log_line_per_event_without_data_or_credentials(logs, start_target, store):
    target = start_target(
        OSS_ACCESS_KEY_ID="sts-ak",
        OSS_ACCESS_KEY_SECRET=STS_SECRET,
        OSS_SECURITY_TOKEN=STS_TOKEN,
        OSS_REGION="cn-hangzhou",
        LOG_LEVEL="DEBUG",
    )
    secret_data = b'{"card":"4111-1111-1111-1111"}'
    assert post(target, secret_data, **{"Ce-Id": "ok-1"}).status_code == 200
    store.fail_next(1, status=403, code="AccessDenied")
    assert post(target, secret_data, **{"Ce-Id": "denied-1"}).status_code == 502
    assert post(target, secret_data, **{"Ce-Id": ""}).status_code == 400
    text = logs.getvalue()
    for forbidden in (STS_SECRET, STS_TOKEN, "4111-1111", "sts-ak", "Signature", "OSS4-HMAC"):
        assert forbidden not in text, forbidden
    lines = [json.loads(line) for line in text.splitlines()]
    outcomes = {line["id"]: line for line in lines if "id" in line}
    assert outcomes["ok-1"]["status"] == 200
    assert outcomes["ok-1"]["key"] == "ok-1"
    assert outcomes["ok-1"]["type"] == "any.event.type"
    assert outcomes["ok-1"]["latency_ms"] >= 0
    assert outcomes["denied-1"]["status"] == 502
    assert outcomes["denied-1"]["code"] == "AccessDenied"
    assert any(line.get("status") == 400 for line in lines)
    assert sum(1 for line in lines if line.get("id") == "ok-1") == 1


def test_slow_oss_times_out_and_is_reported_as_transient(start_target, store):
    target = start_target(OSS_TIMEOUT_SECONDS="0.2", OSS_RETRY_BUDGET_SECONDS="0.3")
    store.set_latency(0.6)
    response = post(target)
    assert response.status_code == 503
    assert response.json()["reason"] == "timeout"
    metrics = requests.get(target.url + "metrics", timeout=5).text
    assert 'oss_target_events_failed_total{reason="timeout"} 1.0' in metrics


def test_ids_with_url_special_characters_are_stored_under_the_exact_key(start_target, store):
    target = start_target(OSS_KEY_PREFIX="in/")
    event_id = "a b/ü?&=+#%.json"
    event = {"specversion": "1.0", "type": "t", "source": "s", "id": event_id, "data": {"x": 1}}
    headers = {"Content-Type": "application/cloudevents+json"}
    response = requests.post(target.url, data=json.dumps(event), headers=headers, timeout=30)
    assert response.status_code == 200
    assert store.keys(BUCKET) == ["in/" + event_id]
    assert store.get(BUCKET, "in/" + event_id).content_type == "application/json"


def test_a_refused_connection_is_503_with_its_own_reason(start_target, logs):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    target = start_target(OSS_ENDPOINT=closed, OSS_RETRY_BUDGET_SECONDS="0.2")
    response = post(target)
    assert response.status_code == 503
    assert response.json()["reason"] == "connection-refused"
    metrics = requests.get(target.url + "metrics", timeout=5).text
    assert 'oss_target_events_failed_total{reason="connection-refused"} 1.0' in metrics
    logged = [json.loads(line) for line in logs.getvalue().splitlines()]
    assert [line["reason"] for line in logged if line.get("id") == SEED_ID] == [
        "connection-refused"
    ]


# ---- credentials that change

ROLE = "acs:ram::1234567890:role/oss-target"
PROVIDER = "acs:ram::1234567890:oidc-provider/ack-rrsa-c123"
OIDC_TOKEN = "eyJhbGciOiJSUzI1NiJ9.service-account-token"
NO_ACCESS_KEY = {"OSS_ACCESS_KEY_ID": None, "OSS_ACCESS_KEY_SECRET": None}


def ready(server) -> int:
    return requests.get(server.url + "readyz", timeout=5).status_code


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def rrsa_env(store, token_file, **env):
    return {
        **NO_ACCESS_KEY,
        "OSS_REGION": "cn-hangzhou",
        "ALIBABA_CLOUD_ROLE_ARN": ROLE,
        "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": PROVIDER,
        "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(token_file),
        "ALIBABA_CLOUD_STS_ENDPOINT": store.sts_endpoint,
        **env,
    }


def test_rrsa_stores_events_with_no_access_key_anywhere(start_target, store, tmp_path, logs):
    store.trust_oidc(ROLE, PROVIDER, OIDC_TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN)
    target = start_target(**rrsa_env(store, token_file))
    assert ready(target) == 200
    assert post(target).status_code == 200
    assert store.get(BUCKET, SEED_ID).body == SEED_BODY
    assert store.sts.calls == 1
    # (The emulator's own debug lines quote the request; the target's lines never do.)
    own = [line for line in logs.getvalue().splitlines() if '"logger": "runtime.' in line]
    assert own and not any(OIDC_TOKEN in line for line in own)
    loaded = [json.loads(line) for line in own if "credentials loaded" in line]
    assert loaded[0]["source"] == "rrsa" and loaded[0]["access_key_id"].startswith("...")


def test_rrsa_900_second_credentials_are_not_exchanged_again_at_once(start_target, store, tmp_path):
    # 900 s (STS's minimum) is inside alibabacloud-credentials' 15-minute stale window: the
    # target used to exchange about once a second forever. Now the next one is due in 600 s.
    store.trust_oidc(ROLE, PROVIDER, OIDC_TOKEN)
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN)
    target = start_target(**rrsa_env(store, token_file, OSS_CREDENTIALS_DURATION_SECONDS="900"))
    assert post(target, **{"Ce-Id": "before"}).status_code == 200
    time.sleep(1.5)
    assert post(target, **{"Ce-Id": "after"}).status_code == 200
    assert store.sts.calls == 1
    assert ready(target) == 200


def test_rrsa_that_sts_refuses_is_not_ready_and_says_why(start_target, store, tmp_path, logs):
    token_file = tmp_path / "token"
    token_file.write_text(OIDC_TOKEN)  # but no role trusts this provider
    target = start_target(**rrsa_env(store, token_file))
    assert ready(target) == 503
    response = post(target)
    assert response.status_code == 503  # retryable: credentials may come
    assert response.json()["reason"] == "no-credentials"
    failing = [line for line in logs.getvalue().splitlines() if "authentication failing" in line]
    assert len(failing) == 1 and json.loads(failing[0])["code"] == "EntityNotExist.Role"
    # Once STS trusts the role, the refresh loop (backing off from 1 s) recovers readiness.
    store.trust_oidc(ROLE, PROVIDER, OIDC_TOKEN)
    assert wait_for(lambda: ready(target) == 200)
    assert post(target).status_code == 200


def write_credentials(path, issued):
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(issued.document()))
    os.replace(temporary, path)


def test_sts_file_expiry_turns_readyz_503_once_and_a_rotated_file_recovers(
    start_target, store, tmp_path, logs
):
    path = tmp_path / "credentials.json"
    write_credentials(path, store.issue_sts(2.0))
    target = start_target(**NO_ACCESS_KEY, OSS_REGION="cn-hangzhou", OSS_CREDENTIALS_FILE=str(path))
    assert post(target, **{"Ce-Id": "first"}).status_code == 200
    # The token expires (nobody rotated the file): known expired, so not ready and every event
    # answered 503 + Retry-After (the pod's state; the broker redelivers), never 502.
    assert wait_for(lambda: ready(target) == 503)
    time.sleep(1.1)  # the emulator's expiry (the file's Expiration is rounded down to a second)
    responses = [post(target, **{"Ce-Id": f"late-{i}"}) for i in range(4)]
    assert [response.status_code for response in responses] == [503] * 4
    assert all(response.headers["Retry-After"] == "1" for response in responses)
    failing = [json.loads(line) for line in logs.getvalue().splitlines() if "failing" in line]
    assert len(failing) == 1
    assert failing[0]["code"] in ("CredentialsExpired", "SecurityTokenExpired")
    assert failing[0]["source"] == "stsFile"
    # An operator (or a sidecar) writes fresh credentials: the target picks them up unrestarted.
    write_credentials(path, store.issue_sts(3600))
    assert wait_for(lambda: ready(target) == 200)
    assert post(target, **{"Ce-Id": "rotated"}).status_code == 200
    assert store.get(BUCKET, "rotated") is not None


def test_an_sts_file_already_expired_at_start_is_not_ready(start_target, store, tmp_path):
    path = tmp_path / "credentials.json"
    write_credentials(path, store.issue_sts(-60))
    target = start_target(**NO_ACCESS_KEY, OSS_REGION="cn-hangzhou", OSS_CREDENTIALS_FILE=str(path))
    assert ready(target) == 503
    response = post(target)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


def test_a_revoked_static_key_is_not_ready_and_comes_back_once_it_works(start_target, store, logs):
    target = start_target(credentials_timing={"probation_seconds": 1.0})
    assert post(target, **{"Ce-Id": "ok"}).status_code == 200
    store.revoke("test-ak")
    for i in range(3):
        assert post(target, **{"Ce-Id": f"revoked-{i}"}).status_code in (502, 503)
    assert ready(target) == 503
    failing = [json.loads(line) for line in logs.getvalue().splitlines() if "failing" in line]
    assert [line["code"] for line in failing] == ["InvalidAccessKeyId"]
    # The key works again (a RAM blip): nothing else would ever send traffic to a not-ready pod.
    store.credentials["test-ak"] = SECRET
    assert wait_for(lambda: ready(target) == 200)
    assert post(target, **{"Ce-Id": "back"}).status_code == 200
    recovered = [
        line for line in logs.getvalue().splitlines() if "authentication recovered" in line
    ]
    assert len(recovered) == 1


def test_an_event_refused_at_a_rotation_is_stored_with_the_new_key(start_target, store, tmp_path):
    # The old key is revoked the moment the file is rotated, before the target's next poll
    # (here: never): the refusal re-reads the file and the same upload is tried once more.
    path = tmp_path / "credentials.json"
    old = store.issue_sts(3600)
    write_credentials(path, old)
    target = start_target(
        credentials_timing={"poll_seconds": 3600},
        **NO_ACCESS_KEY,
        OSS_REGION="cn-hangzhou",
        OSS_CREDENTIALS_FILE=str(path),
    )
    assert post(target, **{"Ce-Id": "before"}).status_code == 200
    write_credentials(path, store.issue_sts(3600))
    store.revoke(old.access_key_id)
    assert post(target, **{"Ce-Id": "at-rotation"}).status_code == 200
    assert store.get(BUCKET, "at-rotation").body == SEED_BODY
    assert ready(target) == 200


def test_clock_skew_is_not_ready_and_retryable(start_target, store, logs):
    target = start_target(OSS_REGION="cn-hangzhou")
    store.clock = lambda: time.time() + 1200  # OSS 20 minutes ahead of the pod
    responses = [post(target, **{"Ce-Id": f"skewed-{i}"}) for i in range(3)]
    assert [response.status_code for response in responses] == [503] * 3
    assert responses[0].json()["reason"] == "clock-skew"
    assert responses[0].headers["Retry-After"] == "1"
    assert ready(target) == 503
    failing = [json.loads(line) for line in logs.getvalue().splitlines() if "failing" in line]
    assert [line["code"] for line in failing] == ["RequestTimeTooSkewed"]
