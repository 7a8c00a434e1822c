"""The receiving core against input that costs more than its bytes: JSON that multiplies in
memory, compressed bodies, unfinished request heads held open by many connections. Sizes are
small; memory is measured with tracemalloc (process-wide), never with timings."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
import tracemalloc

import pytest
import requests

from runtime.receiver import BackgroundServer, Delivery, Receiver, error_response
from runtime.receiver import server as server_module
from runtime.receiver.events import parse_events
from runtime.receiver.server import PROBE_HEAD_SECONDS
from runtime.receiver.settings import (
    HEADER_MEMORY_PER_CONNECTION,
    JSON_MEMORY_FACTOR,
    MAX_HEADERS,
    PROBE_CONNECTIONS,
)
from tests.runtime.test_receiver_limits import read_all

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
HEAD = b'{"specversion":"1.0","id":"m","source":"s","type":"t","data":['
CE = b"ce-specversion: 1.0\r\nce-type: t\r\nce-source: s\r\nce-id: x\r\n"


async def accept(delivery: Delivery):
    return error_response(202, "accepted", "ok")


def worst_json(kind: str, size: int) -> tuple[str, bytes]:
    """A body of about `size` bytes made of what costs Python the most memory per byte."""
    unit = {
        "lists": b"[[]],",
        "arrays": b"[],",
        "objects": b"{},",
        "numbers": b"1.5,",
        "exponents-in-lists": b"[1e1],",
    }[kind]
    count = max(1, (size - len(HEAD) - 8) // len(unit))
    return STRUCTURED, HEAD + unit * count + b"[]]}"


@pytest.mark.parametrize("kind", ["lists", "arrays", "objects", "numbers", "exponents-in-lists"])
def test_parsing_costs_at_most_the_json_memory_factor_per_body_byte(kind):
    content_type, body = worst_json(kind, 600_000)
    tracemalloc.start()
    try:
        parse_events([("Content-Type", content_type)], body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= JSON_MEMORY_FACTOR * len(body), (kind, peak / len(body))


def test_a_batch_of_minimal_events_costs_at_most_the_factor():
    body = (
        b"["
        + b",".join(
            b'{"specversion":"1.0","id":"%d","source":"s","type":"t"}' % i for i in range(3000)
        )
        + b"]"
    )
    tracemalloc.start()
    try:
        parse_events([("Content-Type", BATCH)], body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= JSON_MEMORY_FACTOR * len(body)


def test_json_bodies_are_limited_to_what_the_budget_can_parse():
    """Budget 2 MiB, body limit 1 MiB: a structured body may be at most 2 MiB / factor; at that
    size the whole request (read, parse, handler) stays within about the budget, and a 1 MiB body
    of empty arrays (33 MiB once parsed) is 413 before it is read. Binary bodies keep 1 MiB."""
    budget = 2 * 1024 * 1024
    receiver = Receiver(
        accept, name="json", max_body_bytes=1024 * 1024, in_flight_bytes=budget, body_timeout=5
    )
    assert receiver.max_json_body_bytes == budget // JSON_MEMORY_FACTOR
    _, fits = worst_json("lists", receiver.max_json_body_bytes)
    _, too_big = worst_json("lists", 1024 * 1024)
    with BackgroundServer(receiver, drain_timeout=2) as server:
        tracemalloc.start()
        try:
            ok = requests.post(
                server.url, data=fits, headers={"Content-Type": STRUCTURED}, timeout=30
            )
            refused = requests.post(
                server.url, data=too_big, headers={"Content-Type": STRUCTURED}, timeout=30
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        binary = requests.post(
            server.url,
            data=b"x" * (1024 * 1024),
            headers={"ce-specversion": "1.0", "ce-id": "b", "ce-source": "s", "ce-type": "t"},
            timeout=30,
        )
    assert ok.status_code == 202, ok.text
    assert refused.status_code == 413 and refused.json()["error"] == "body-too-large"
    assert "JSON" in refused.json()["message"]
    assert binary.status_code == 202
    # The client's own copies of the two bodies are traced too (same process).
    assert peak <= budget + len(fits) + 2 * len(too_big) + 1024 * 1024, peak


def test_a_batch_over_the_event_limit_is_413():
    receiver = Receiver(accept, name="batch", max_body_bytes=1 << 20, max_batch_events=3)
    events = [{"specversion": "1.0", "id": str(i), "source": "s", "type": "t"} for i in range(4)]
    with BackgroundServer(receiver, drain_timeout=2) as server:
        three = requests.post(
            server.url, data=json.dumps(events[:3]), headers={"Content-Type": BATCH}, timeout=5
        )
        four = requests.post(
            server.url, data=json.dumps(events), headers={"Content-Type": BATCH}, timeout=5
        )
    assert three.status_code == 202
    assert four.status_code == 413 and four.json()["error"] == "too-many-events"


def raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        return read_all(sock)


BOMB = gzip.compress(b"\0" * (4 * 1024 * 1024), 9)


@pytest.mark.parametrize(
    ("framing", "body"),
    [
        (b"Content-Encoding: gzip\r\nContent-Length: %d\r\n" % len(BOMB), BOMB),
        (b"Content-Encoding: gzip\r\nContent-Length: 5\r\n", b"hello"),  # not gzip at all
        (b"Content-Encoding: br\r\nContent-Length: 5\r\n", b"hello"),
        (b"Content-Encoding: identity, deflate\r\nContent-Length: 5\r\n", b"hello"),
        (b"Transfer-Encoding: gzip, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    ],
    ids=["gzip-bomb", "invalid-gzip", "br", "deflate-after-identity", "te-gzip-chunked"],
)
def test_content_codings_are_415_before_the_body_is_read(framing, body):
    seen: list[Delivery] = []

    async def handler(delivery: Delivery):
        seen.append(delivery)
        return error_response(202, "accepted", "ok")

    receiver = Receiver(handler, name="codings", max_body_bytes=1024 * 1024, body_timeout=2)
    with BackgroundServer(receiver, drain_timeout=2) as server:
        answer = raw(
            server.port,
            b"POST / HTTP/1.1\r\nHost: x\r\n"
            + CE
            + b"Content-Type: text/plain\r\n"
            + framing
            + b"\r\n"
            + body,
        )
        assert receiver.budget.used == 0
    head, _, text = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 415"), answer[:300]
    assert json.loads(text)["error"] == "unsupported-encoding"
    assert seen == []


def test_identity_coding_is_accepted_and_stored_as_sent():
    seen: list[Delivery] = []

    async def handler(delivery: Delivery):
        seen.append(delivery)
        return error_response(202, "accepted", "ok")

    receiver = Receiver(handler, name="identity", max_body_bytes=4096)
    with BackgroundServer(receiver, drain_timeout=2) as server:
        answer = raw(
            server.port,
            b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
            b"Content-Encoding: identity\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
    assert answer.startswith(b"HTTP/1.1 202")
    assert seen[0].body == b"hello"


def test_connections_over_the_cap_get_503_and_unfinished_heads_are_bounded():
    """Five connections hold unfinished heads (MAX_HEADERS - 2 lines of 8000 bytes each); over
    the cap a probe is still answered (a POST there is 503 busy), also once PROBE_CONNECTIONS more
    hold unfinished heads (the oldest gives way); once they go, requests are served again. Each
    held head costs less than HEADER_MEMORY_PER_CONNECTION (tracemalloc)."""
    receiver = Receiver(accept, name="conns", max_body_bytes=4096)
    head = b"POST / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"x-h%d: %s\r\n" % (i, b"a" * 8000) for i in range(MAX_HEADERS - 2)
    )
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=30, max_connections=5) as srv:
        time.sleep(0.2)
        tracemalloc.start()
        try:
            held = []
            for _ in range(5):
                sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                sock.sendall(head)
                held.append(sock)
            time.sleep(0.5)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # Over the cap, PROBE_CONNECTIONS more connections serve the probes only.
        probe = raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        posted = raw(srv.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        for _ in range(PROBE_CONNECTIONS):
            # Unfinished heads on the probe slots too: each gives way to a new connection.
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"x-h: a\r\n")
            held.append(sock)
        time.sleep(0.3)
        served = raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 5
        while True:
            try:
                answer = requests.get(srv.url + "healthz", timeout=5)
                if answer.status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert probe.startswith(b"HTTP/1.1 200"), probe[:200]
    assert posted.startswith(b"HTTP/1.1 503"), posted[:200]
    assert json.loads(posted.partition(b"\r\n\r\n")[2])["error"] == "busy"
    assert served.startswith(b"HTTP/1.1 200"), served[:200]
    assert answer.status_code == 200
    assert peak < 5 * HEADER_MEMORY_PER_CONNECTION, peak / 5


def test_a_head_with_more_than_max_headers_lines_is_refused():
    receiver = Receiver(accept, name="heads", max_body_bytes=4096)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"x-h%d: a\r\n" % i for i in range(MAX_HEADERS + 1)
    )
    with BackgroundServer(receiver, drain_timeout=2) as server:
        answer = raw(server.port, head + b"\r\n")
    assert answer.split(b" ", 2)[1] == b"400", answer[:200]
    assert answer.endswith(b"Too many headers received")


def test_a_sender_that_disconnects_while_waiting_for_the_budget_leaves_the_queue():
    """Budget full (a handler holds it); a second sender queues for room, then hangs up. Its
    place is given up at once (not after the 30 s wait), counted as a disconnect."""
    release = threading.Event()

    async def holding(delivery: Delivery):
        while not release.is_set():
            await asyncio.sleep(0.01)
        return error_response(202, "accepted", "ok")

    receiver = Receiver(
        holding, name="leave", max_body_bytes=500, in_flight_bytes=500, body_timeout=30
    )
    head = b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
    with BackgroundServer(receiver, drain_timeout=2) as server:
        hog = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        hog.sendall(head + b"Content-Length: 500\r\n\r\n" + b"x" * 500)
        wait_until(lambda: receiver.budget.used == 500)
        waiter = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        waiter.sendall(head + b"Content-Length: 400\r\n\r\n")
        wait_until(lambda: receiver.budget.waiting == 1)
        waiter.close()
        wait_until(lambda: not receiver.budget.waiting, seconds=10)
        release.set()
        assert hog.recv(100).startswith(b"HTTP/1.1 202")
        hog.close()
        disconnects = requests.get(server.url + "metrics", timeout=5).text
    assert "leave_client_disconnects_total 1.0" in disconnects


def wait_until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not reached"
        time.sleep(0.01)


def test_trickling_chunked_senders_hold_what_they_sent_not_the_limit():
    """Budget 1 MiB = the body limit. Four chunked senders trickle a byte and wait: each holds
    the first step (64 KiB), not 1 MiB, so a real request is admitted at once (before the fix
    it queued behind them until its wait ran out: 503). A chunked body of 600 KB still grows its
    reservation to its size and is accepted."""
    seen: list[Delivery] = []

    async def handler(delivery: Delivery):
        seen.append(delivery)
        return error_response(202, "accepted", "ok")

    receiver = Receiver(
        handler, name="trickle", max_body_bytes=1 << 20, in_flight_bytes=1 << 20, body_timeout=3
    )
    head = b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
    with BackgroundServer(receiver, drain_timeout=2) as server:
        tricklers = []
        for _ in range(4):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n")
            tricklers.append(sock)
        wait_until(lambda: receiver.budget.used == 4 * 64 * 1024)
        real = raw(server.port, head + b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
        big = requests.post(
            server.url,
            data=iter([b"y" * 100_000] * 6),
            headers={"ce-specversion": "1.0", "ce-id": "c", "ce-source": "s", "ce-type": "t"},
            timeout=10,
        )
        for sock in tricklers:
            sock.close()
        wait_until(lambda: receiver.budget.used == 0)
    assert real.startswith(b"HTTP/1.1 202"), real[:200]
    assert big.status_code == 202
    assert len(seen[-1].body) == 600_000


def test_connections_that_closed_are_not_counted_against_the_cap():
    """A sender that opens a connection per request (Connection: close, HTTP/1.0 clients, a
    client reconnecting after a 503) is refused nothing while it has fewer open than the cap.
    Connections that opened and closed within a second used to stay counted for that second:
    40 requests in a row on fresh connections against a cap of 5 got 503 `busy` from the sixth
    on."""
    receiver = Receiver(accept, name="churn", max_body_bytes=4096)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    post = (
        b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\nhi"
    )
    with BackgroundServer(receiver, drain_timeout=2, max_connections=5) as server:
        answers = [raw(server.port, post if i % 2 else request) for i in range(40)]
    statuses = [answer.split(b" ", 2)[1] for answer in answers]
    assert statuses == [b"200", b"202"] * 20, statuses


def test_a_burst_of_connections_is_counted_as_it_is_accepted():
    """Twelve connections opened at once against a cap of 5: aiohttp lists a connection only a
    loop iteration after accepting it, so the count includes the ones accepted but not listed
    yet. Five serve requests, PROBE_CONNECTIONS serve only the probes, the rest are refused."""
    receiver = Receiver(accept, name="burst", max_body_bytes=4096)
    post = (
        b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\nhi"
    )
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=30, max_connections=5) as srv:
        sockets = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(12)]
        time.sleep(0.3)
        for sock in sockets:
            with contextlib.suppress(OSError):  # refused and closed already
                sock.sendall(post)
        answers = []
        for sock in sockets:
            with sock:
                answers.append(read_all(sock))
    accepted = [a for a in answers if a.startswith(b"HTTP/1.1 202")]
    busy = [a for a in answers if a.startswith(b"HTTP/1.1 503") and b'"busy"' in a]
    assert (len(accepted), len(busy)) == (5, 12 - 5), answers


def _one_request(sock: socket.socket, request: bytes) -> bytes:
    """Send `request` on a keep-alive connection and read its one answer (Content-Length)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
    while len(rest) < length:
        piece = sock.recv(65536)
        if not piece:
            break
        rest += piece
    return head + b"\r\n\r\n" + rest


def test_connections_a_sender_closed_are_not_counted_while_new_ones_are_accepted():
    """A sender with a pool of connections closes them all and opens as many new ones at once:
    never more open than the cap, yet the new ones were refused 503 `busy` when asyncio accepted
    them before it had read the old ones' end (the attack review: 33-64 of 64 refused per
    round)."""
    receiver = Receiver(accept, name="recycle", max_body_bytes=4096)
    post = (
        b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\n\r\nhi"
    )
    statuses = []
    with BackgroundServer(receiver, drain_timeout=2, max_connections=8) as server:
        for _ in range(15):
            pool = [socket.create_connection(("127.0.0.1", server.port), timeout=10)]
            pool += [
                socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(7)
            ]
            statuses += [_one_request(sock, post).split(b" ", 2)[1] for sock in pool]
            for sock in pool:
                sock.close()
    assert statuses == [b"202"] * len(statuses), statuses


def test_requests_whose_senders_hung_up_keep_their_connection_slot():
    """A sender that sends a whole event and hangs up while it is handled keeps its place under
    the cap until the handler is done: else senders could pile up requests without bound by
    sending and hanging up (the attack review queued thousands behind the handler slots). Once
    the handlers finish, the slots are free again."""
    release = threading.Event()

    async def slow_for_gone(delivery: Delivery):
        if delivery.events[0].id.startswith("gone"):
            while not release.is_set():
                await asyncio.sleep(0.01)
        return error_response(202, "accepted", "ok")

    receiver = Receiver(slow_for_gone, name="gone", max_body_bytes=4096)

    def post(event_id: bytes) -> bytes:
        return (
            b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-type: t\r\nce-source: s\r\n"
            b"ce-id: " + event_id + b"\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
            b"Connection: close\r\n\r\nhi"
        )

    with BackgroundServer(receiver, drain_timeout=2, max_connections=4) as server:
        for index in range(4):
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(post(b"gone-%d" % index))
        wait_until(lambda: receiver.in_flight == 4)
        time.sleep(0.2)
        while_held = raw(server.port, post(b"new-held"))
        release.set()
        wait_until(lambda: receiver.in_flight == 0)
        after = [raw(server.port, post(b"new-%d" % i)) for i in range(4)]
    # Over the cap: the connection is probe-only, a POST there is 503 busy.
    assert while_held.startswith(b"HTTP/1.1 503"), while_held[:200]
    assert [a.split(b" ", 2)[1] for a in after] == [b"202"] * 4, after


def test_a_probe_only_connection_answers_one_probe_and_closes():
    """Connections over the cap serve the probes only, one request each: a client cannot keep
    them with keep-alive requests (68 clients polling /healthz took every slot, so the kubelet's
    own probes were refused). One that sends nothing gets its 408 after PROBE_HEAD_SECONDS."""
    receiver = Receiver(accept, name="probes", max_body_bytes=4096)
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=30, max_connections=1) as srv:
        held = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        time.sleep(0.2)
        probe = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        answer = read_all(probe)  # returns once the server closed it
        idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        started = time.monotonic()
        timed_out = read_all(idle)
        idle_for = time.monotonic() - started
        for sock in (held, probe, idle):
            sock.close()
    assert answer.count(b"HTTP/1.1 200") == 1, answer
    assert b"Connection: close" in answer
    assert timed_out.startswith(b"HTTP/1.1 408"), timed_out
    assert idle_for < PROBE_HEAD_SECONDS + 1.0, idle_for


def test_a_sender_gone_mid_body_is_a_disconnect_not_a_400_in_the_request_counts():
    receiver = Receiver(accept, name="gonebody", max_body_bytes=4096, body_timeout=5)
    with BackgroundServer(receiver, drain_timeout=2) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
                b"Content-Length: 100\r\n\r\nhalf"
            )
            time.sleep(0.2)
        wait_until(lambda: "gonebody_client_disconnects_total 1.0" in metrics_text(server))
        text = metrics_text(server)
    assert 'gonebody_requests_total{status="400"}' not in text, text


def metrics_text(server) -> str:
    return requests.get(server.url + "metrics", timeout=5).text


def test_idle_probe_only_connections_give_way_to_a_new_probe():
    """All 64 + 4 slots held by connections that send nothing (an attacker reconnecting as each
    is closed kept the kubelet's probes out: 7 of 7 failed). A new connection over the cap takes
    the place of the oldest probe-only connection that has not sent a request yet."""
    receiver = Receiver(accept, name="evict", max_body_bytes=4096)
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=30, max_connections=2) as srv:
        idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(2)]
        time.sleep(0.1)
        idle += [
            socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            for _ in range(PROBE_CONNECTIONS)
        ]
        time.sleep(0.1)
        probe = raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        evicted = [sock for sock in idle[2:] if _closed_by_server(sock)]
        for sock in idle:
            sock.close()
    assert probe.startswith(b"HTTP/1.1 200"), probe[:200]
    assert len(evicted) == 1


def _closed_by_server(sock: socket.socket) -> bool:
    """Answered 503 `busy` and closed (what a connection that gave way gets)."""
    sock.settimeout(0.5)
    data = b""
    try:
        while piece := sock.recv(4096):
            data += piece
    except TimeoutError:
        return False
    except OSError:
        pass
    return data.startswith(b"HTTP/1.1 503") and b'"busy"' in data


def test_a_reader_that_stops_reading_loses_its_connection_after_the_write_stall(monkeypatch):
    """64 connections each pipelining requests and never reading their answers held every slot
    indefinitely (no deadline for writing an answer): events were refused while the pod stayed
    ready. A connection whose answers make no progress for WRITE_STALL_SECONDS is aborted."""
    monkeypatch.setattr(server_module, "WRITE_STALL_SECONDS", 1.0)
    monkeypatch.setattr(server_module, "WRITE_STALL_CHECK_SECONDS", 0.2)
    receiver = Receiver(accept, name="stall", max_body_bytes=4096)
    post = (
        b"POST / HTTP/1.1\r\nHost: x\r\n" + CE + b"Content-Type: text/plain\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\nhi"
    )
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=30, max_connections=2) as srv:
        readers = []
        for _ in range(2):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            sock.connect(("127.0.0.1", srv.port))
            sock.setblocking(False)
            request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 3000
            with contextlib.suppress(BlockingIOError):
                sock.send(request)
            readers.append(sock)
        time.sleep(0.5)
        held = raw(srv.port, post)
        time.sleep(2.5)
        after = raw(srv.port, post)
        for sock in readers:
            sock.close()
    assert held.startswith(b"HTTP/1.1 503"), held[:200]  # both slots held: probe-only
    assert after.startswith(b"HTTP/1.1 202"), after[:200]


def test_a_burst_of_idle_connections_does_not_keep_a_probe_out():
    """Connections accepted in one burst fill the probe slots before any of them is made (no
    transport yet): they must give way too, or a burst of connects refuses the kubelet's probe
    that follows (the attack review: 13 of 14 probes failed under a connect flood)."""
    receiver = Receiver(accept, name="burstprobe", max_body_bytes=4096)
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=30, max_connections=2) as srv:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(2)]
        time.sleep(0.1)
        statuses = []
        for _ in range(5):
            burst = [
                socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(12)
            ]
            probe = raw(srv.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            statuses.append(probe.split(b" ", 2)[1] if probe else b"")
            for sock in burst:
                sock.close()
        for sock in held:
            sock.close()
    assert statuses == [b"200"] * 5, statuses
