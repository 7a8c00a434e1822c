"""The OSS target's head start: a large binary-mode event is uploaded while its body arrives.

Served for real against the verifying emulator. What must hold: the upload begins before the
body is complete (the two hops overlap), an object is stored only from a whole body, a body that
never arrives whole leaves no object (a disconnect, the body deadline, a drain), failed attempts
are retried from the arrived body, and senders that trickle cannot hold every OSS connection.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time

import requests

from runtime.alibaba_oss_target.settings import DEFAULT_HEAD_START_BYTES
from tests.fakes.objectstore import crc64_ecma
from tests.runtime import test_oss_target_service as service
from tests.runtime.test_oss_target_service import BUCKET
from tests.runtime.test_receiver_limits import read_all

# The served target against the verifying emulator, as in test_oss_target_service.
store = service.store
start_target = service.start_target

SIZE = 2 * DEFAULT_HEAD_START_BYTES


def head(event_id: str, size: int = SIZE, content_type: str = "application/octet-stream") -> bytes:
    return (
        f"POST / HTTP/1.1\r\nHost: target\r\nContent-Type: {content_type}\r\n"
        f"ce-specversion: 1.0\r\nce-type: bench.event\r\nce-source: tests\r\nce-id: {event_id}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()


def gauge(server, name: str) -> float:
    text = requests.get(server.url + "metrics", timeout=5).text
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))


def wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached"
        time.sleep(0.01)


def uploading(server) -> float:
    return gauge(server, "oss_target_uploads_in_flight")


def half_sent(server, event_id: str, body: bytes) -> socket.socket:
    """A sender that has sent the head and half the body, once the target's upload runs."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.sendall(head(event_id, len(body)) + body[: len(body) // 2])
    return sock


def rest_and_answer(sock: socket.socket, body: bytes) -> bytes:
    """Send the half of `body` that `half_sent` held back; the whole answer."""
    sock.sendall(body[len(body) // 2 :])
    return read_all(sock)


def test_the_upload_runs_while_the_body_arrives_and_stores_the_whole_body(start_target, store):
    target = start_target()
    body = os.urandom(SIZE)
    with half_sent(target, "ahead", body) as sock:
        wait_for(lambda: uploading(target) == 1)
        time.sleep(0.2)
        # OSS has not stored anything from half a body, and the request is not answered.
        assert store.keys(BUCKET) == []
        answer = rest_and_answer(sock, body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    stored = store.get(BUCKET, "ahead")
    assert stored.body == body
    assert stored.crc64 == crc64_ecma(body)
    assert store.stats.requests == 1
    assert uploading(target) == 0


def test_a_sender_that_disconnects_mid_body_leaves_no_object(start_target, store):
    target = start_target()
    body = os.urandom(SIZE)
    sock = half_sent(target, "cut", body)
    wait_for(lambda: uploading(target) == 1)
    sock.close()
    wait_for(lambda: uploading(target) == 0)
    wait_for(lambda: store.stats.incomplete == 1)
    assert store.keys(BUCKET) == []
    assert target.receiver.budget.used == 0
    # The same event sent whole afterwards is stored, once.
    with socket.create_connection(("127.0.0.1", target.port), timeout=30) as again:
        again.sendall(head("cut") + body)
        assert read_all(again).startswith(b"HTTP/1.1 200")
    assert store.get(BUCKET, "cut").body == body


def test_a_body_that_misses_its_deadline_is_408_and_leaves_no_object(start_target, store):
    target = start_target(BODY_TIMEOUT_SECONDS="1")
    body = os.urandom(SIZE)
    with half_sent(target, "late", body) as sock:
        wait_for(lambda: uploading(target) == 1)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    wait_for(lambda: uploading(target) == 0)
    wait_for(lambda: store.stats.incomplete == 1)
    assert store.keys(BUCKET) == []


def test_failed_attempts_are_retried_from_the_arrived_body(start_target, store):
    target = start_target()
    store.fail_next(1, status=503, code="SlowDown")
    store.drop_next(1)
    store.corrupt_crc_next(1)
    body = os.urandom(SIZE)
    with half_sent(target, "retried", body) as sock:
        wait_for(lambda: uploading(target) == 1)
        answer = rest_and_answer(sock, body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert store.get(BUCKET, "retried").body == body
    # 503, dropped, CRC mismatch (stored, then replaced by the same bytes), stored.
    assert store.stats.requests == 4


def test_trickling_senders_hold_at_most_half_the_oss_connections(start_target, store):
    """OSS_MAX_CONCURRENCY 4: two uploads may run ahead of their bodies; a third large event
    waits for its body like a small one, and a small event is stored at once meanwhile."""
    target = start_target(OSS_MAX_CONCURRENCY="4")
    bodies = {f"slow-{i}": os.urandom(SIZE) for i in range(3)}
    senders = {}
    for event_id, body in bodies.items():
        senders[event_id] = half_sent(target, event_id, body)
        time.sleep(0.1)
    wait_for(lambda: uploading(target) == 2)
    time.sleep(0.2)
    assert uploading(target) == 2
    small = requests.post(
        target.url,
        data=b"small",
        headers={"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s", "ce-id": "small"},
        timeout=10,
    )
    assert small.status_code == 200
    answers = {}

    def finish(event_id: str) -> None:
        sock = senders[event_id]
        body = bodies[event_id]
        answers[event_id] = rest_and_answer(sock, body)
        sock.close()

    threads = [threading.Thread(target=finish, args=(event_id,)) for event_id in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for event_id, body in bodies.items():
        assert answers[event_id].startswith(b"HTTP/1.1 200"), answers[event_id][:300]
        assert store.get(BUCKET, event_id).body == body


def test_the_threshold_is_a_setting_and_zero_turns_it_off(start_target, store):
    small = os.urandom(300 * 1024)
    eager = start_target(OSS_HEAD_START_BYTES=str(len(small)))
    with half_sent(eager, "eager", small) as sock:
        wait_for(lambda: uploading(eager) == 1)
        assert rest_and_answer(sock, small).startswith(b"HTTP/1.1 200")
    assert store.get(BUCKET, "eager").body == small
    off = start_target(OSS_HEAD_START_BYTES="0")
    body = os.urandom(SIZE)
    with half_sent(off, "off", body) as sock:
        time.sleep(0.3)
        assert uploading(off) == 0
        assert rest_and_answer(sock, body).startswith(b"HTTP/1.1 200")
    assert store.get(BUCKET, "off").body == body


def test_no_head_start_where_the_object_is_not_the_body_as_sent(start_target, store):
    """STORE=event (the object is the event document) and an event that will be refused (a key
    outside the key rules): nothing is uploaded before the body is read; the refused event is
    still answered 400 once it is."""
    target = start_target(STORE="event")
    body = os.urandom(SIZE)
    with half_sent(target, "whole-event", body) as sock:
        time.sleep(0.3)
        assert uploading(target) == 0
        assert rest_and_answer(sock, body).startswith(b"HTTP/1.1 200")
    assert store.get(BUCKET, "whole-event").body.startswith(b"{")
    plain = start_target()
    with half_sent(plain, "..", body) as sock:
        time.sleep(0.3)
        assert uploading(plain) == 0
        answer = rest_and_answer(sock, body)
    assert answer.startswith(b"HTTP/1.1 400") and b"invalid-key" in answer, answer[:300]


def test_a_drain_cuts_an_unfinished_body_short_and_stores_nothing(start_target, store):
    target = start_target()  # BackgroundServer drains for 5 s, then cuts requests short
    body = os.urandom(SIZE)
    sock = half_sent(target, "drained", body)
    wait_for(lambda: uploading(target) == 1)
    stopper = threading.Thread(target=target.stop)
    stopper.start()
    answer = read_all(sock)
    stopper.join(30)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer[:300]
    wait_for(lambda: store.stats.incomplete == 1)
    assert store.keys(BUCKET) == []


def test_the_retry_budget_counts_from_the_whole_body_not_the_head(start_target, store):
    """A head-started upload begins with the request head; a sender that takes longer than the
    retry budget to send its body must still get its retries once the body is there (the budget
    used to count from the first attempt: one 503 from OSS after a slow body was final)."""
    target = start_target(OSS_RETRY_BUDGET_SECONDS="1")
    store.fail_next(1, status=503, code="SlowDown")
    body = os.urandom(SIZE)
    with half_sent(target, "slow-sender", body) as sock:
        wait_for(lambda: uploading(target) == 1)
        time.sleep(1.5)
        answer = rest_and_answer(sock, body)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert store.get(BUCKET, "slow-sender").body == body
    assert store.stats.requests == 2


def test_no_head_start_when_oss_concurrency_is_one(start_target, store):
    """At most half the upload slots run ahead of their bodies: with one slot, none."""
    target = start_target(OSS_MAX_CONCURRENCY="1")
    body = os.urandom(SIZE)
    with half_sent(target, "one-slot", body) as sock:
        time.sleep(0.3)
        assert uploading(target) == 0
        assert rest_and_answer(sock, body).startswith(b"HTTP/1.1 200")
