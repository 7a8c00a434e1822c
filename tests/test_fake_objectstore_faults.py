"""Fault injection, wire details, concurrency, admin routes and the separate-process CLI."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import oss2
import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosClientError, CosServiceError

from tests.fakes.objectstore import ObjectStoreEmulator

AK, SK = "test-ak", "test-sk"
OSS_BUCKET = "test-bucket"
COS_BUCKET = "examplebucket-1250000000"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store():
    with ObjectStoreEmulator(credentials={AK: SK}, buckets=[OSS_BUCKET, COS_BUCKET]) as emulator:
        yield emulator


def oss_bucket(store, version="v1"):
    if version == "v4":
        return oss2.Bucket(oss2.AuthV4(AK, SK), store.endpoint, OSS_BUCKET, region="cn-hangzhou")
    return oss2.Bucket(oss2.Auth(AK, SK), store.endpoint, OSS_BUCKET)


def cos_client(store):
    conf = CosConfig(
        Region="ap-guangzhou",
        SecretId=AK,
        SecretKey=SK,
        Scheme="http",
        IP="127.0.0.1",
        Port=store.port,
    )
    return CosS3Client(conf, retry=0)


# ---------------------------------------------------------------------------------------------
# Injected faults


@pytest.mark.parametrize(
    ("status", "code", "exception"),
    [
        (503, "SlowDown", oss2.exceptions.ServerError),
        (500, "InternalError", oss2.exceptions.ServerError),
    ],
)
def test_fail_next_answers_the_status_without_storing(store, status, code, exception):
    bucket = oss_bucket(store)
    store.fail_next(2, status=status, code=code)
    for _ in range(2):
        with pytest.raises(exception) as info:
            bucket.put_object("k", b"x")
        assert (info.value.status, info.value.code) == (status, code)
    assert store.get(OSS_BUCKET, "k") is None
    bucket.put_object("k", b"x")  # the third request is served normally
    stats = store.stats
    assert (stats.injected, stats.stored, stats.requests) == (2, 1, 3)
    assert stats.errors == {code: 2}


def test_fail_next_is_seen_by_qcloud_cos(store):
    store.fail_next(1, status=500, code="InternalError")
    with pytest.raises(CosServiceError) as info:
        cos_client(store).put_object(Bucket=COS_BUCKET, Key="k", Body=b"x")
    assert (info.value.get_status_code(), info.value.get_error_code()) == (500, "InternalError")
    assert store.keys(COS_BUCKET) == []


def test_fail_next_on_head_uses_the_x_oss_err_header(store):
    oss_bucket(store).put_object("k", b"x")
    store.fail_next(1)
    with pytest.raises(oss2.exceptions.ServerError) as info:
        oss_bucket(store).head_object("k")
    assert (info.value.status, info.value.code) == (503, "SlowDown")


def test_fail_randomly_is_reproducible_with_a_seed_and_never_stores_failures(store):
    bucket = oss_bucket(store, "v4")
    store.fail_randomly(0.5, status=503, code="SlowDown", seed=7)
    outcomes = []
    for i in range(40):
        try:
            bucket.put_object(f"k{i}", b"x")
            outcomes.append(True)
        except oss2.exceptions.ServerError as exc:
            assert (exc.status, exc.code) == (503, "SlowDown")
            outcomes.append(False)
    stored = {f"k{i}" for i, ok in enumerate(outcomes) if ok}
    assert 0 < len(stored) < 40
    assert set(store.keys(OSS_BUCKET)) == stored
    assert store.stats.injected == 40 - len(stored)

    store.reset()
    store.fail_randomly(0.5, seed=7)
    again = []
    for i in range(40):
        try:
            bucket.put_object(f"k{i}", b"x")
            again.append(True)
        except oss2.exceptions.ServerError:
            again.append(False)
    assert again == outcomes


def test_drop_next_closes_the_connection_after_reading_the_put(store):
    bucket = oss_bucket(store)
    store.drop_next(1)
    with pytest.raises(oss2.exceptions.RequestError):
        bucket.put_object("dropped", b"x" * 100_000)
    assert store.get(OSS_BUCKET, "dropped") is None
    assert store.stats.drops == 1
    bucket.put_object("after", b"x")  # the client reconnects and carries on
    assert store.get(OSS_BUCKET, "after") is not None


def test_drop_is_seen_by_qcloud_cos_as_a_client_error(store):
    store.drop_next(1)
    with pytest.raises(CosClientError):
        cos_client(store).put_object(Bucket=COS_BUCKET, Key="k", Body=b"x")
    assert store.keys(COS_BUCKET) == []


def test_drop_randomly_drops_some_and_stores_the_rest(store):
    bucket = oss_bucket(store)
    store.drop_randomly(0.3, seed=3)
    ok = 0
    for i in range(30):
        try:
            bucket.put_object(f"k{i}", b"x")
            ok += 1
        except oss2.exceptions.RequestError:
            pass
    stats = store.stats
    assert 0 < stats.drops < 30
    assert stats.drops + ok == 30 == stats.requests
    assert len(store.keys(OSS_BUCKET)) == ok == stats.stored


def test_latency_is_added_before_answering_and_clear_faults_removes_everything(store):
    bucket = oss_bucket(store)
    store.set_latency(0.3)
    start = time.monotonic()
    bucket.put_object("slow", b"x")
    assert time.monotonic() - start >= 0.3
    store.fail_next(5)
    store.drop_randomly(1.0)
    store.corrupt_crc_next(3)
    store.clear_faults()
    start = time.monotonic()
    bucket.put_object("fast", b"x")
    assert time.monotonic() - start < 0.3
    assert store.stats.injected == store.stats.drops == 0


def test_fault_arguments_are_validated(store):
    with pytest.raises(ValueError):
        store.fail_randomly(1.5)
    with pytest.raises(ValueError):
        store.drop_randomly(-0.1)
    with pytest.raises(ValueError):
        store.set_latency(-1)
    with pytest.raises(ValueError):
        store.fail_next(-1)


# ---------------------------------------------------------------------------------------------
# Wire details


def test_chunked_request_body_is_accepted(store):
    bucket = oss_bucket(store)
    result = bucket.put_object("chunked", iter([b"first ", b"second ", b"third"]))
    assert store.get(OSS_BUCKET, "chunked").body == b"first second third"
    assert result.crc == store.get(OSS_BUCKET, "chunked").crc64


def raw_request(store, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_garbled_authorization_gets_vendor_xml_403(store):
    status, headers, body = raw_request(
        store, "PUT", f"/{OSS_BUCKET}/k", {"Authorization": "OSS garbage"}, b"x"
    )
    assert status == 403
    assert headers["Content-Type"] == "application/xml"
    assert headers["x-oss-request-id"] and headers["x-oss-ec"]
    assert b"<Code>AccessDenied</Code>" in body
    assert store.keys(OSS_BUCKET) == []


def test_oss_head_error_has_empty_body_and_base64_error_header(store):
    status, headers, body = raw_request(store, "HEAD", f"/{OSS_BUCKET}/missing")
    assert (status, body) == (403, b"")
    assert b"<Code>AccessDenied</Code>" in base64.b64decode(headers["x-oss-err"])


def test_cos_error_document_has_every_field_qcloud_cos_requires(store):
    host = f"{COS_BUCKET}.cos.ap-guangzhou.myqcloud.com"
    status, headers, body = raw_request(store, "GET", "/k", {"Host": host})
    assert status == 403
    for element in (b"<Code>AccessDenied</Code>", b"<Message>", b"<Resource>", b"<RequestId>"):
        assert element in body
    assert headers["x-cos-request-id"]


def test_invalid_content_length_is_a_400(store):
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=5)
    conn.putrequest("PUT", f"/{OSS_BUCKET}/k")
    conn.putheader("Content-Length", "abc")
    conn.endheaders()
    assert conn.getresponse().status == 400
    conn.close()


@pytest.mark.slow
def test_concurrent_puts_are_all_stored(store):
    bucket = oss_bucket(store)
    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(lambda i: bucket.put_object(f"c/{i}", b"x" * 1024), range(200)))
    assert all(r.status == 200 for r in results)
    assert len(store.keys(OSS_BUCKET)) == 200
    assert store.stats.stored == 200


@pytest.mark.slow
def test_64_concurrent_clients_with_random_faults_keep_counts_consistent(store):
    bucket = oss_bucket(store, "v4")
    store.fail_randomly(0.2, seed=11)
    store.drop_randomly(0.1, seed=12)

    def put(i):
        try:
            bucket.put_object(f"m/{i}", b"y" * 2048)
            return f"m/{i}"
        except (oss2.exceptions.ServerError, oss2.exceptions.RequestError):
            return None

    with ThreadPoolExecutor(max_workers=64) as pool:
        succeeded = {key for key in pool.map(put, range(256)) if key}
    stats = store.stats
    assert set(store.keys(OSS_BUCKET)) == succeeded
    assert stats.requests == 256 == stats.stored + stats.injected + stats.drops
    assert stats.injected > 0 and stats.drops > 0


def test_keep_alive_serves_several_requests_on_one_connection(store):
    conn = http.client.HTTPConnection("127.0.0.1", store.port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/_emulator/stats")
        response = conn.getresponse()
        assert response.status == 200
        response.read()
    conn.close()


# ---------------------------------------------------------------------------------------------
# Admin routes


def admin(store, method, route, payload=None):
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(f"{store.endpoint}/_emulator/{route}", data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_admin_routes_expose_objects_stats_and_faults(store):
    oss_bucket(store).put_object(
        "dir/ü.json", b'{"a":1}', headers={"Content-Type": "application/json", "x-oss-meta-k": "v"}
    )
    status, _, body = admin(store, "GET", f"objects/{OSS_BUCKET}")
    assert status == 200
    [entry] = json.loads(body)
    assert entry["key"] == "dir/ü.json" and entry["size"] == 7 and entry["metadata"] == {"k": "v"}

    status, headers, body = admin(store, "GET", f"object/{OSS_BUCKET}/dir/%C3%BC.json")
    assert (status, body, headers["Content-Type"]) == (200, b'{"a":1}', "application/json")
    assert json.loads(headers["X-Emulator-Metadata"]) == {"k": "v"}
    assert admin(store, "GET", f"object/{OSS_BUCKET}/nope")[0] == 404
    assert admin(store, "GET", "objects/no-such-bucket")[0] == 404

    stats = json.loads(admin(store, "GET", "stats")[2])
    assert stats["stored"] == 1 and stats["requests"] == 1  # admin calls are not counted

    assert (
        admin(
            store, "POST", "faults", {"fail_next": {"n": 1, "status": 500, "code": "InternalError"}}
        )[0]
        == 200
    )
    with pytest.raises(oss2.exceptions.ServerError) as info:
        oss_bucket(store).put_object("k", b"x")
    assert info.value.status == 500

    assert admin(store, "POST", "buckets/new-bucket")[0] == 201
    assert "new-bucket" in json.loads(admin(store, "GET", "buckets")[2])
    assert admin(store, "POST", "reset")[0] == 200
    assert store.keys(OSS_BUCKET) == [] and store.stats.requests == 0
    assert admin(store, "POST", "faults", {"fail_randomly": {"probability": 2}})[0] == 400
    assert admin(store, "GET", "nothing-here")[0] == 404


# ---------------------------------------------------------------------------------------------
# Separate process


def start_cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.objectstore", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = proc.stdout.readline().strip()
    assert first.startswith("endpoint=http://127.0.0.1:"), proc.stderr.read()
    return proc, first.split("=", 1)[1]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled(sig):
    proc, endpoint = start_cli(
        "--port", "0", "--bucket", "cli-bucket", "--credentials", "cli-ak:cli-sk"
    )
    try:
        bucket = oss2.Bucket(oss2.Auth("cli-ak", "cli-sk"), endpoint, "cli-bucket")
        bucket.put_object("k", b"from another process")
        with urllib.request.urlopen(f"{endpoint}/_emulator/object/cli-bucket/k", timeout=5) as r:
            assert r.read() == b"from another process"
        with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
            oss2.Bucket(oss2.Auth("cli-ak", "wrong"), endpoint, "cli-bucket").put_object("k", b"")
    finally:
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()


def test_cli_fail_probability_applies_to_every_request():
    proc, endpoint = start_cli(
        "--bucket",
        "cli-b",
        "--credentials",
        "a:s",
        "--fail-probability",
        "1",
        "--fail-status",
        "500",
    )
    try:
        with pytest.raises(oss2.exceptions.ServerError) as info:
            oss2.Bucket(oss2.Auth("a", "s"), endpoint, "cli-b").put_object("k", b"x")
        assert (info.value.status, info.value.code) == (500, "InternalError")
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()
