"""The shared receiver against hostile senders: deadlines, a byte budget, encodings, disconnects
and a drain that fits in the grace period. Served for real on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time

import pytest
import requests

from runtime.receiver import BackgroundServer, Delivery, Receiver, error_response
from runtime.receiver.budget import ByteBudget

CE_HEADERS = {
    "Content-Type": "application/json",
    "Ce-Specversion": "1.0",
    "Ce-Type": "t",
    "Ce-Source": "s",
    "Ce-Id": "id-1",
}
HEAD = "".join(f"{k}: {v}\r\n" for k, v in CE_HEADERS.items())


class Accepting:
    """Answers 202 to every delivery; `block` holds handlers until set."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.block = threading.Event()
        self.block.set()

    async def __call__(self, delivery: Delivery):
        self.deliveries.append(delivery)
        while not self.block.is_set():
            await asyncio.sleep(0.01)
        return error_response(202, "accepted", "ok")


def serve(handler=None, **options):
    defaults = {"name": "limits", "max_body_bytes": 4096, "body_timeout": 1.0}
    receiver = Receiver(handler or Accepting(), **{**defaults, **options})
    return BackgroundServer(receiver, drain_timeout=2, header_timeout=1.0, max_connections=256)


def stalled(port: int, announced: int = 1000) -> socket.socket:
    """A connection that announces a body and never sends it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST / HTTP/1.1\r\nHost: x\r\n{HEAD}Content-Length: {announced}\r\n\r\n".encode()
    )
    return sock


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        answer += data
    return answer


def metric(server, name: str) -> float:
    text = requests.get(server.url + "metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_stalled_bodies_hold_no_slot_and_are_cut_off_by_the_read_deadline():
    handler = Accepting()
    with serve(handler, max_in_flight=4) as server:
        sockets = [stalled(server.port) for _ in range(80)]
        started = time.monotonic()
        answer = requests.post(server.url, data=b"{}", headers=CE_HEADERS, timeout=10)
        assert answer.status_code == 202
        assert time.monotonic() - started < 1.0  # not behind the 80 stalled senders
        assert requests.get(server.url + "healthz", timeout=5).status_code == 200
        answers = [read_all(sock) for sock in sockets]
        for sock in sockets:
            sock.close()
    # Each stalled sender was told 408 and its connection closed (recv returned EOF).
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0][:200]
    assert b'"request-timeout"' in answers[0]


@pytest.mark.parametrize(
    "sent",
    [b"POST / HTTP/1.1\r\nHost: x\r\n", b"POST / HT", b""],
    ids=["partial-head", "partial-line", "nothing"],
)
def test_a_connection_that_never_completes_its_headers_is_answered_408_and_closed(sent):
    with (
        serve() as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(sent)  # and nothing more
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
        assert b'"error":"header-timeout"' in answer
        assert metric(server, 'limits_requests_rejected_total{reason="header-timeout"}') >= 1


def test_an_idle_keep_alive_connection_after_an_answer_is_closed_without_a_408():
    with (
        serve() as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nce-specversion: 1.0\r\nce-id: k\r\n"
            b"ce-source: s\r\nce-type: t\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 2\r\n\r\nhi"
        )
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 202"), answer[:80]
        assert b"HTTP/1.1 408" not in answer


def test_a_trickling_body_is_cut_off_at_the_deadline_even_while_bytes_arrive():
    with (
        serve() as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock,
    ):
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{HEAD}Content-Length: 100\r\n\r\n".encode())
        started = time.monotonic()
        for _ in range(30):
            try:
                sock.sendall(b" ")
            except OSError:
                break
            time.sleep(0.1)
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408")
    assert time.monotonic() - started < 4


def test_memory_is_bounded_by_body_bytes_not_by_request_count():
    """Budget 1,000 bytes: two stalled 400-byte bodies fit, a third waits (nothing of it read,
    no 100 Continue), a chunked body reserves the whole limit, and all proceed once room frees."""
    handler = Accepting()
    receiver = Receiver(
        handler, name="budget", max_body_bytes=500, in_flight_bytes=1000, body_timeout=5
    )
    with BackgroundServer(receiver, drain_timeout=2) as server:
        first, second = stalled(server.port, 400), stalled(server.port, 400)
        time.sleep(0.2)
        assert receiver.budget.used == 800
        third = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        third.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\n{HEAD}Expect: 100-continue\r\n"
            "Content-Length: 400\r\n\r\n".encode()
        )
        time.sleep(0.3)
        assert receiver.budget.used == 800  # waiting, not admitted
        third.settimeout(0.2)
        with pytest.raises(TimeoutError):
            third.recv(100)  # no 100 Continue while it waits
        first.sendall(b"{" + b" " * 398 + b"}")
        assert first.recv(4096).startswith(b"HTTP/1.1 202")
        third.settimeout(5)
        assert third.recv(100).startswith(b"HTTP/1.1 100 Continue")
        assert receiver.budget.used == 800
        third.sendall(b"{" + b" " * 398 + b"}")
        assert third.recv(4096).startswith(b"HTTP/1.1 202")
        second.sendall(b"{" + b" " * 398 + b"}")
        assert second.recv(4096).startswith(b"HTTP/1.1 202")
        chunked = requests.post(server.url, data=iter([b"{", b"}"]), headers=CE_HEADERS, timeout=5)
        assert chunked.status_code == 202
        assert receiver.budget.used == 0
        for sock in (first, second, third):
            sock.close()
    assert len(handler.deliveries) == 4


def test_a_full_budget_answers_503_busy_after_the_wait():
    handler = Accepting()
    handler.block.clear()  # the first request's handler holds its 500 bytes
    receiver = Receiver(
        handler, name="busy", max_body_bytes=500, in_flight_bytes=500, body_timeout=0.5
    )
    with BackgroundServer(receiver, drain_timeout=2) as server:
        hog = stalled(server.port, 500)
        hog.sendall(b"{" + b" " * 498 + b"}")
        while not handler.deliveries:
            time.sleep(0.01)
        answer = requests.post(server.url, data=b"{}", headers=CE_HEADERS, timeout=5)
        handler.block.set()
        hog.close()
    assert answer.status_code == 503
    assert answer.json()["error"] == "busy" and answer.headers["Retry-After"] == "1"


def test_byte_budget_is_first_come_first_served():
    async def scenario():
        budget = ByteBudget(10)
        await budget.acquire(6)
        order = []

        async def take(name, size):
            await budget.acquire(size)
            order.append(name)

        big = asyncio.ensure_future(take("big", 10))
        await asyncio.sleep(0)
        small = asyncio.ensure_future(take("small", 1))
        await asyncio.sleep(0.01)
        assert order == []  # the small one does not overtake the big one waiting first
        budget.release(6)
        await big
        budget.release(10)
        await small
        with pytest.raises(ValueError):
            await budget.acquire(11)
        cancelled = asyncio.ensure_future(budget.acquire(10))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
        budget.release(1)
        assert budget.used == 0
        return order

    assert asyncio.run(scenario()) == ["big", "small"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ce-subject", b"Caf\xe9"),  # Latin-1, as the npm SDK's binary mode sends
        ("ce-id", b"\xff\xfe"),
        ("x-anything", b"\xc3\x28"),
        ("content-type", b"application/json; charset=\xff"),
    ],
)
def test_header_bytes_that_are_not_utf8_are_400_never_500(name, value):
    handler = Accepting()
    with serve(handler) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            head = b"".join(
                f"{k}: {v}\r\n".encode() for k, v in CE_HEADERS.items() if k.lower() != name
            )
            sock.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\n"
                + head
                + name.encode()
                + b": "
                + value
                + b"\r\nContent-Length: 2\r\n\r\n{}"
            )
            answer = read_all(sock)
        assert metric(server, 'limits_requests_rejected_total{reason="invalid-header"}') == 1
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"] == "invalid-header"
    assert handler.deliveries == []


def test_valid_utf8_header_values_are_accepted():
    handler = Accepting()
    with serve(handler) as server:
        headers = {**CE_HEADERS, "ce-subject": "Café".encode().decode("latin-1")}
        assert requests.post(server.url, data=b"{}", headers=headers, timeout=5).status_code == 202
    assert handler.deliveries[0].events[0].event.get_subject() == "Café"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"specversion":"1.0","id":"1","source":"s","type":"t","data":' + b"9" * 5000 + b"}",
        b'{"specversion":"1.0","id":"1","source":"s","type":"t","data":"\\ud800"}',
    ],
    ids=["nested-100k", "5000-digit-integer", "lone-surrogate"],
)
def test_hostile_json_is_400_never_500(body):
    handler = Accepting()
    with serve(handler, max_body_bytes=300_000) as server:
        answer = requests.post(
            server.url,
            data=body,
            headers={"Content-Type": "application/cloudevents+json"},
            timeout=10,
        )
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid-event"
    assert handler.deliveries == []


def test_client_disconnect_is_counted_not_logged_as_an_error(caplog):
    handler = Accepting()
    with serve(handler) as server, caplog.at_level(logging.INFO):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                f"POST / HTTP/1.1\r\nHost: x\r\n{HEAD}Content-Length: 100\r\n\r\n{{".encode()
            )
            time.sleep(0.1)
        deadline = time.monotonic() + 5
        while metric(server, "limits_client_disconnects_total") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert handler.deliveries == []


def test_expect_100_continue_comes_only_after_the_size_check():
    with serve() as server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\n{HEAD}Expect: 100-continue\r\n"
            "Content-Length: 100000\r\n\r\n".encode()
        )
        assert sock.recv(4096).startswith(b"HTTP/1.1 413")


def test_sigterm_drain_answers_503_to_what_it_cuts_short_within_the_timeout():
    handler = Accepting()
    handler.block.clear()  # a handler stuck on a slow upstream
    receiver = Receiver(handler, name="drain", max_body_bytes=100)
    server = BackgroundServer(receiver, drain_timeout=1.0).start()
    results = {}

    def post():
        results["answer"] = requests.post(server.url, data=b"{}", headers=CE_HEADERS, timeout=30)

    worker = threading.Thread(target=post)
    worker.start()
    while not handler.deliveries:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    stopped_after = time.monotonic() - started
    worker.join(10)
    assert stopped_after < 1.0 + 3.0
    assert results["answer"].status_code == 503
    assert results["answer"].json()["error"] == "draining"
    assert receiver.in_flight == 0


@pytest.mark.parametrize(
    "head",
    [
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"NOT-HTTP\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["repeated-content-type", "header-over-8190-bytes", "not-http", "bad-chunk-size"],
)
def test_malformed_http_is_400_counted_and_not_logged_as_an_error(head, caplog):
    with serve() as server, caplog.at_level(logging.DEBUG):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(head)
            answer = read_all(sock)
        deadline = time.monotonic() + 5
        while metric(server, 'limits_requests_rejected_total{reason="bad-http"}') < 1:
            assert time.monotonic() < deadline, answer[:200]
            time.sleep(0.05)
    assert answer[9:12] == b"400"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
