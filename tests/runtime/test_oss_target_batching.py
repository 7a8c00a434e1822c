"""Rolled NDJSON objects, served for real against the object-store emulator: rolling by count,
bytes and time, compression round-trips, acknowledgement only once the object is stored (a slow
or failing OSS holds or fails every request of that object), the drain flush, the byte budget."""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import zstandard

from runtime.alibaba_oss_target.app import build_target
from runtime.alibaba_oss_target.core import event_document
from runtime.alibaba_oss_target.settings import read_settings
from runtime.receiver import BackgroundServer, EnvReader
from runtime.receiver.events import parse_events
from runtime.receiver.retry import RetryPolicy
from runtime.receiver.settings import (
    BODY_MEMORY_FACTOR,
    JSON_MEMORY_FACTOR,
    RESERVED_MEMORY_BYTES,
)
from tests.fakes.objectstore import ObjectStoreEmulator

BUCKET = "lake-bucket"
SECRET = "test-sk-Lk4Tq"

LAKE = {
    "OSS_KEY_TEMPLATE": "dt=%F/{type}/{id}",
    "BATCH_MAX_EVENTS": "1000",
    "BATCH_MAX_SECONDS": "30",
}


@pytest.fixture
def store():
    with ObjectStoreEmulator(credentials={"test-ak": SECRET}, buckets=[BUCKET]) as emulator:
        yield emulator


@pytest.fixture
def start_target(store):
    servers = []

    def start(**env):
        environ = {
            "OSS_ENDPOINT": store.endpoint,
            "OSS_BUCKET": BUCKET,
            "OSS_ACCESS_KEY_ID": "test-ak",
            "OSS_ACCESS_KEY_SECRET": SECRET,
            "OSS_RETRY_BUDGET_SECONDS": "0.5",
            **LAKE,
            **env,
        }
        settings = read_settings(EnvReader({k: v for k, v in environ.items() if v is not None}))
        policy = RetryPolicy(budget=settings.retry_budget_seconds, base=0.005, cap=0.05)
        receiver, uploader = build_target(settings, policy=policy)
        receiver.apply(settings.server)
        server = BackgroundServer(
            receiver,
            on_shutdown=[uploader.close],
            max_connections=settings.server.max_connections,
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        # A test that stopped its server itself has closed its loop already.
        with contextlib.suppress(RuntimeError):
            server.stop()


def event(number, type_="com.example.order", **extra):
    return {
        "specversion": "1.0",
        "type": type_,
        "source": "/shop",
        "id": f"e-{number}",
        "time": "2026-11-29T22:30:45Z",
        "datacontenttype": "application/json",
        "data": {"n": number, **extra},
    }


def post(server, document, timeout=20):
    mode = "application/cloudevents-batch+json" if isinstance(document, list) else None
    return requests.post(
        server.url,
        data=json.dumps(document),
        headers={"Content-Type": mode or "application/cloudevents+json"},
        timeout=timeout,
    )


def post_all(server, documents):
    with ThreadPoolExecutor(len(documents)) as pool:
        return list(pool.map(lambda document: post(server, document), documents))


def lines(stored):
    body = stored.body
    encoding = stored.headers.get("content-encoding") or stored.headers.get("Content-Encoding")
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "zstd":
        body = zstandard.ZstdDecompressor().decompressobj().decompress(body)
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode().split("\n")[:-1]]


def reply_data(reply):
    """The data of a response event in a batch answer (inline JSON or data_base64)."""
    if "data" in reply:
        return reply["data"] if isinstance(reply["data"], dict) else json.loads(reply["data"])
    return json.loads(base64.b64decode(reply["data_base64"]))


def metric(server, name):
    text = requests.get(server.url + "metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def pending(server, count, seconds=10.0):
    """Wait until `count` requests are being handled (waiting for their object)."""
    deadline = time.monotonic() + seconds
    while server.receiver.in_flight < count:
        assert time.monotonic() < deadline, "requests did not arrive"
        time.sleep(0.01)


# ---- rolling


def test_objects_roll_by_event_count_and_every_request_gets_its_line(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="5")
    responses = post_all(server, [event(n) for n in range(10)])
    assert [r.status_code for r in responses] == [200] * 10
    keys = store.keys(BUCKET)
    assert len(keys) == 2
    by_key: dict[str, list[int]] = {}
    for response in responses:
        answer = response.json()
        assert (
            answer["bucket"] == BUCKET and answer["etag"] == store.get(BUCKET, answer["key"]).etag
        )
        by_key.setdefault(answer["key"], []).append(answer["line"])
    assert sorted(by_key) == sorted(keys)
    for key, numbers in by_key.items():
        assert sorted(numbers) == [1, 2, 3, 4, 5]
        assert key.startswith("dt=2026-11-29/com.example.order/20261129T223045.000000Z-")
        assert key.endswith(".ndjson")
    ids = sorted(line["id"] for key in keys for line in lines(store.get(BUCKET, key)))
    assert ids == sorted(f"e-{n}" for n in range(10))
    assert metric(server, 'oss_target_object_flushes_total{reason="events"}') == 2
    assert metric(server, "oss_target_objects_written_total") == 2
    assert store.stats.stored == 2  # two PUTs for ten events
    assert metric(server, "oss_target_events_per_object_sum") == 10
    assert metric(server, "oss_target_events_per_object_count") == 2
    assert metric(server, "oss_target_object_bytes_uncompressed_total") == sum(
        len(store.get(BUCKET, key).body) for key in keys
    )


def test_the_answered_line_is_the_event(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="4")
    responses = post_all(server, [event(n) for n in range(4)])
    for number, response in enumerate(responses):
        answer = response.json()
        assert lines(store.get(BUCKET, answer["key"]))[answer["line"] - 1]["id"] == f"e-{number}"


def test_groups_follow_the_key_without_id(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="2")
    responses = post_all(server, [event(0, "a"), event(1, "b"), event(2, "a"), event(3, "b")])
    assert all(r.status_code == 200 for r in responses)
    folders = sorted(key.rsplit("/", 1)[0] for key in store.keys(BUCKET))
    assert folders == ["dt=2026-11-29/a", "dt=2026-11-29/b"]
    for key in store.keys(BUCKET):
        assert {line["type"] for line in lines(store.get(BUCKET, key))} == {key.split("/")[1]}


def test_objects_roll_by_bytes_before_passing_the_limit(start_target, store):
    documents = [event(n, pad="x" * 200) for n in range(9)]
    body = json.dumps(documents[0]).encode()
    parsed = parse_events([("content-type", "application/cloudevents+json")], body)[1]
    size = len(event_document(parsed[0])) + 1  # every line has this size (one-digit numbers)
    # Three lines reach the limit exactly: the object rolls with the third.
    server = start_target(BATCH_MAX_BYTES=str(3 * size))
    responses = post_all(server, documents)
    assert all(r.status_code == 200 for r in responses)
    objects = [store.get(BUCKET, key) for key in store.keys(BUCKET)]
    assert len(objects) == 3
    assert all(len(lines(o)) == 3 and len(o.body) == 3 * size for o in objects)
    assert metric(server, 'oss_target_object_flushes_total{reason="bytes"}') == 3


def test_a_line_that_would_pass_the_byte_limit_starts_a_new_object(start_target, store):
    documents = [event(n, pad="x" * 200) for n in range(6)]
    body = json.dumps(documents[0]).encode()
    parsed = parse_events([("content-type", "application/cloudevents+json")], body)[1]
    size = len(event_document(parsed[0])) + 1
    server = start_target(BATCH_MAX_BYTES=str(4 * size - 1), BATCH_MAX_SECONDS="1")
    responses = post_all(server, documents)
    assert all(r.status_code == 200 for r in responses)
    objects = [store.get(BUCKET, key) for key in store.keys(BUCKET)]
    assert sorted(len(lines(o)) for o in objects) == [3, 3]
    assert all(len(o.body) < 4 * size - 1 for o in objects)
    assert metric(server, 'oss_target_object_flushes_total{reason="bytes"}') == 1
    assert metric(server, 'oss_target_object_flushes_total{reason="time"}') == 1


def test_an_object_rolls_after_max_seconds_and_not_before(start_target, store):
    server = start_target(BATCH_MAX_SECONDS="1")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(post, server, event(1))
        pending(server, 1)
        time.sleep(0.3)
        assert not future.done() and store.keys(BUCKET) == []  # held, not acknowledged
        response = future.result()
    assert response.status_code == 200 and response.json()["line"] == 1
    assert metric(server, 'oss_target_object_flushes_total{reason="time"}') == 1


def test_a_batch_request_is_answered_per_event(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="3")
    response = post(server, [event(1), event(2), event(1), event(3)])
    assert response.status_code == 200
    answers = [reply_data(reply) for reply in response.json()]
    keys = {answer["key"] for answer in answers}
    assert len(keys) == 1  # one object of 3 lines: the repeated event shares its line
    assert [answer["line"] for answer in answers] == [1, 2, 1, 3]


# ---- compression


@pytest.mark.parametrize(
    ("compression", "extension", "encoding"),
    [("none", ".ndjson", None), ("gzip", ".ndjson.gz", "gzip"), ("zstd", ".ndjson.zst", "zstd")],
)
def test_compression_round_trip(start_target, store, compression, extension, encoding):
    server = start_target(BATCH_MAX_EVENTS="50", BATCH_COMPRESSION=compression)
    documents = [event(n, text="na\u00efve \u2028 line\nbreak " * 20) for n in range(50)]
    response = post(server, documents)
    assert response.status_code == 200
    (key,) = store.keys(BUCKET)
    assert key.endswith(extension)
    stored = store.get(BUCKET, key)
    assert stored.content_type == "application/x-ndjson"
    headers = {name.lower(): value for name, value in stored.headers.items()}
    assert headers.get("content-encoding") == encoding
    assert lines(stored) == documents
    raw = metric(server, "oss_target_object_bytes_uncompressed_total")
    assert metric(server, "oss_target_object_bytes_compressed_total") == len(stored.body)
    if encoding:
        assert len(stored.body) < raw / 5
    else:
        assert len(stored.body) == raw


# ---- acknowledgement only once stored


def test_a_slow_oss_holds_every_request_of_the_object(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="3")
    store.set_latency(1.0)
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(post, server, event(n)) for n in range(3)]
        pending(server, 3)
        time.sleep(0.5)
        assert not any(f.done() for f in futures)  # the PUT is under way: nobody is answered
        assert store.keys(BUCKET) == []
        responses = [f.result() for f in futures]
    assert [r.status_code for r in responses] == [200] * 3
    assert len(store.keys(BUCKET)) == 1


def test_a_failing_oss_fails_every_request_of_the_object(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="3")
    store.fail_next(1000, 503, "SlowDown")
    responses = post_all(server, [event(n) for n in range(3)])
    assert [r.status_code for r in responses] == [503] * 3
    assert all(r.headers["Retry-After"] for r in responses)
    assert {r.headers["ce-category"] for r in responses} == {"error"}
    assert len({r.json()["key"] for r in responses}) == 1
    store.clear_faults()
    assert store.keys(BUCKET) == []
    assert metric(server, "oss_target_objects_written_total") == 0
    # Redelivered, they are stored (in a new object).
    assert all(r.status_code == 200 for r in post_all(server, [event(n) for n in range(3)]))


def test_an_oss_client_error_is_502_for_every_request_of_the_object(start_target, store):
    server = start_target(BATCH_MAX_EVENTS="2")
    store.fail_next(1, 403, "AccessDenied")
    responses = post_all(server, [event(n) for n in range(2)])
    assert [r.status_code for r in responses] == [502] * 2


# ---- drain and memory


def test_sigterm_drain_flushes_open_objects_in_time(start_target, store):
    server = start_target(BATCH_MAX_SECONDS="60")
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(post, server, event(n)) for n in range(2)]
        pending(server, 2)
        assert store.keys(BUCKET) == []
        started = time.monotonic()
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        responses = [f.result() for f in futures]
        stopper.join()
    assert time.monotonic() - started < 10  # not the 60 s timer
    assert [r.status_code for r in responses] == [200, 200]
    (key,) = store.keys(BUCKET)
    assert sorted(line["id"] for line in lines(store.get(BUCKET, key))) == ["e-0", "e-1"]


def test_waiting_requests_keep_their_bytes_in_the_receivers_budget(start_target, store):
    # Three waiting structured requests of ~1,200 bytes, each holding what parsing it may cost
    # (JSON_MEMORY_FACTOR x its length), fill a budget of 3 x 1,500 such bytes; a fourth waits.
    budget = 3 * JSON_MEMORY_FACTOR * 1500
    server = start_target(
        MEMORY_LIMIT_BYTES=str(RESERVED_MEMORY_BYTES + BODY_MEMORY_FACTOR * budget),
        MAX_BODY_BYTES="1500",
        BATCH_MAX_BYTES="4000",
        BODY_TIMEOUT_SECONDS="0.5",
        BATCH_MAX_SECONDS="3",
    )
    documents = [event(n, pad="y" * 1000) for n in range(4)]
    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(post, server, document) for document in documents[:3]]
        pending(server, 3)
        assert server.receiver.budget.used >= 3 * 1000
        busy = post(server, documents[3])
        assert busy.status_code == 503 and busy.json()["error"] == "busy"
        assert [f.result().status_code for f in futures] == [200] * 3
    assert server.receiver.budget.used == 0


def test_batch_settings():
    base = {
        "OSS_ENDPOINT": "oss-cn-hangzhou.aliyuncs.com",
        "OSS_BUCKET": "my-bucket",
        "OSS_ACCESS_KEY_ID": "ak",
        "OSS_ACCESS_KEY_SECRET": "sk",
    }
    off = read_settings(EnvReader(base))
    assert off.batch is None and off.server.max_in_flight == 64
    on = read_settings(EnvReader({**base, "BATCH_MAX_EVENTS": "500", "BATCH_COMPRESSION": "GZIP"}))
    assert on.batch is not None
    assert (on.batch.max_events, on.batch.max_bytes, on.batch.max_seconds) == (500, 8 << 20, 5.0)
    assert on.batch.compression == "gzip"
    assert on.server.max_in_flight == 1000  # single-event requests can fill an object by count
    explicit = read_settings(EnvReader({**base, "BATCH_MAX_EVENTS": "500", "MAX_IN_FLIGHT": "32"}))
    assert explicit.server.max_in_flight == 32
    from runtime.receiver.settings import SettingError

    for name, value in [
        ("BATCH_MAX_EVENTS", "-1"),
        ("BATCH_MAX_BYTES", "0"),
        ("BATCH_MAX_SECONDS", "0"),
        ("BATCH_COMPRESSION", "brotli"),
    ]:
        with pytest.raises(SettingError) as caught:
            read_settings(EnvReader({**base, "BATCH_MAX_EVENTS": "10", name: value}))
        assert caught.value.name == name
    with pytest.raises(SettingError, match="in-flight budget") as caught:
        read_settings(
            EnvReader({**base, "BATCH_MAX_EVENTS": "10", "BATCH_MAX_BYTES": str(1 << 30)})
        )
    assert caught.value.name == "BATCH_MAX_BYTES"


def test_a_missing_attribute_is_a_400_and_nothing_of_the_request_is_placed(start_target, store):
    server = start_target(OSS_KEY_TEMPLATE="{subject}/{id}", BATCH_MAX_EVENTS="2")
    response = post(server, [event(1) | {"subject": "a"}, event(2)])
    assert response.status_code == 400
    assert (response.json()["error"], response.json()["index"]) == ("missing-attribute", 1)
    assert "'subject'" in response.json()["message"]
    # The first event was not placed either: these two fill an object by themselves.
    responses = post_all(server, [event(3) | {"subject": "a"}, event(4) | {"subject": "a"}])
    assert [r.json()["line"] for r in responses] in ([1, 2], [2, 1])
    (key,) = store.keys(BUCKET)
    assert key.startswith("a/") and len(lines(store.get(BUCKET, key))) == 2


def test_requests_waiting_for_objects_never_starve_the_probes(start_target, store):
    # Every capped connection is held by a request waiting for its object; the liveness and
    # readiness probes are still answered (a 503 would get a healthy pod restarted), and
    # another sender gets 503 busy.
    server = start_target(MAX_CONNECTIONS="4", BATCH_MAX_SECONDS="3")
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(post, server, event(n)) for n in range(4)]
        pending(server, 4)
        for path in ("healthz", "readyz", "healthz"):
            assert requests.get(server.url + path, timeout=5).status_code == 200
        extra = post(server, event(9))
        assert extra.status_code == 503 and extra.json()["error"] == "busy"
        assert [f.result().status_code for f in futures] == [200] * 4
