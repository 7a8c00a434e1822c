"""The receiving core's body reader over real sockets: exact Content-Length bodies arriving in
pieces, chunked bodies, bodies that end early, bodies over the limit, senders that go away, and
a pipelined request right after a body (nothing read past Content-Length)."""

from __future__ import annotations

import random
import socket
import time

import pytest

from runtime.receiver import BackgroundServer, Receiver
from runtime.receiver.settings import JSON_MEMORY_FACTOR
from tests.runtime.test_receiver_limits import Accepting, metric, read_all

LIMIT = 64 * 1024
BINARY = (
    "Content-Type: application/octet-stream\r\nCe-Specversion: 1.0\r\nCe-Type: t\r\n"
    "Ce-Source: s\r\n"
)


def serve(handler):
    receiver = Receiver(handler, name="body", max_body_bytes=LIMIT, body_timeout=2.0)
    return BackgroundServer(receiver, drain_timeout=2, header_timeout=2.0)


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def head(event_id: str, framing: str) -> bytes:
    return f"POST / HTTP/1.1\r\nHost: x\r\n{BINARY}Ce-Id: {event_id}\r\n{framing}\r\n".encode()


def send_in_pieces(sock: socket.socket, data: bytes, sizes: list[int]) -> None:
    """Send `data` as separate writes of `sizes` (cycled), pausing so they arrive apart."""
    start, index = 0, 0
    while start < len(data):
        end = start + sizes[index % len(sizes)]
        sock.sendall(data[start:end])
        time.sleep(0.002)
        start, index = end, index + 1


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def chunked(data: bytes, sizes: list[int]) -> bytes:
    out, start, index = b"", 0, 0
    while start < len(data):
        piece = data[start : start + sizes[index % len(sizes)]]
        out += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        start, index = start + len(piece), index + 1
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("size", "pieces"),
    [(0, [1]), (1, [1]), (1000, [7, 300]), (LIMIT - 1, [4096]), (LIMIT, [65536]), (LIMIT, [997])],
)
def test_a_declared_body_arrives_whole_however_it_is_split(size, pieces):
    body = random.Random(size).randbytes(size)
    handler = Accepting()
    with serve(handler) as server, connect(server) as sock:
        sock.sendall(head("exact", f"Content-Length: {size}\r\nConnection: close\r\n"))
        send_in_pieces(sock, body, pieces)
        assert status_of(read_all(sock)) == 202
    assert [bytes(d.body) for d in handler.deliveries] == [body]
    assert handler.deliveries[0].events[0].data == body


@pytest.mark.parametrize("sizes", [[1], [100, 3], [LIMIT]])
def test_a_chunked_body_arrives_whole(sizes):
    body = random.Random(7).randbytes(5000 if sizes != [LIMIT] else LIMIT)
    handler = Accepting()
    with serve(handler) as server, connect(server) as sock:
        sock.sendall(head("chunked", "Transfer-Encoding: chunked\r\nConnection: close\r\n"))
        send_in_pieces(sock, chunked(body, sizes), [4096])
        assert status_of(read_all(sock)) == 202
    assert [bytes(d.body) for d in handler.deliveries] == [body]


def test_a_chunked_body_over_the_limit_is_413_and_the_connection_closed():
    handler = Accepting()
    with serve(handler) as server, connect(server) as sock:
        sock.sendall(head("big", "Transfer-Encoding: chunked\r\n"))
        sock.sendall(chunked(b"x" * LIMIT, [LIMIT])[: -len(b"0\r\n\r\n")])
        sock.sendall(b"1\r\nx\r\n")  # one byte over
        answer = read_all(sock)  # returns only once the server closed the connection
    assert status_of(answer) == 413
    assert handler.deliveries == []


def test_a_declared_body_over_the_limit_is_413_before_anything_is_read():
    handler = Accepting()
    with serve(handler) as server, connect(server) as sock:
        sock.sendall(head("big", f"Content-Length: {LIMIT + 1}\r\n"))
        answer = read_all(sock)  # nothing of the body sent: the answer comes anyway
    assert status_of(answer) == 413
    assert handler.deliveries == []


@pytest.mark.parametrize(
    "framing",
    [
        ("Content-Length: 5000\r\n", b"x" * 2500),
        ("Transfer-Encoding: chunked\r\n", chunked(b"x" * 2500, [1000])[: -len(b"0\r\n\r\n")]),
        ("Transfer-Encoding: chunked\r\n", b"3e8\r\n" + b"x" * 10),  # mid-chunk
    ],
    ids=["short-declared", "chunked-without-end", "chunked-mid-chunk"],
)
def test_a_body_cut_short_by_a_disconnect_is_counted_and_never_handled(framing):
    header, sent = framing
    handler = Accepting()
    with serve(handler) as server:
        with connect(server) as sock:
            sock.sendall(head("short", header))
            sock.sendall(sent)
            time.sleep(0.1)
        # the sender is gone (well before the 2 s read deadline)
        deadline = time.monotonic() + 5
        while metric(server, "body_client_disconnects_total") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert metric(server, 'body_requests_total{status="500"}') == 0
    assert handler.deliveries == []


def test_nothing_is_read_past_content_length_a_pipelined_request_follows():
    first, second = b"a" * 3000, b"b" * 10
    handler = Accepting()
    with serve(handler) as server, connect(server) as sock:
        sock.sendall(
            head("one", f"Content-Length: {len(first)}\r\n")
            + first
            + head("two", f"Content-Length: {len(second)}\r\nConnection: close\r\n")
            + second
        )
        answer = read_all(sock)
    assert answer.count(b"HTTP/1.1 202") == 2
    assert [bytes(d.body) for d in handler.deliveries] == [first, second]


class Recording(Accepting):
    """Notes the budget in use while each delivery is handled."""

    def __init__(self) -> None:
        super().__init__()
        self.used: list[int] = []
        self.receiver: Receiver | None = None

    async def __call__(self, delivery):
        self.used.append(self.receiver.budget.used)
        return await super().__call__(delivery)


STRUCTURED = "Content-Type: application/cloudevents+json\r\n"


@pytest.mark.parametrize(
    ("in_flight", "framing", "body", "reserved"),
    [
        # binary mode: once read, the reservation is the body's own length (held once)
        (100_000, "Content-Length: 1000\r\n", b"x" * 1000, 1000),
        (100_000, "Transfer-Encoding: chunked\r\n", b"x" * 1000, 1000),
        # structured: what parsing JSON may cost, JSON_MEMORY_FACTOR times the length
        (100_000, STRUCTURED + "Content-Length: {n}\r\n", None, float(JSON_MEMORY_FACTOR)),
        (100_000, STRUCTURED + "Transfer-Encoding: chunked\r\n", None, float(JSON_MEMORY_FACTOR)),
    ],
)
def test_a_read_body_holds_its_length_and_a_json_body_its_parsing_cost(
    in_flight, framing, body, reserved
):
    handler = Recording()
    receiver = Receiver(
        handler, name="weights", max_body_bytes=4000, in_flight_bytes=in_flight, body_timeout=2.0
    )
    handler.receiver = receiver
    if body is None:
        body = (
            b'{"specversion":"1.0","id":"s","source":"s","type":"t","data":"' + b"y" * 900 + b'"}'
        )
    if isinstance(reserved, float):
        reserved = int(len(body) * reserved)
    framing = framing.format(n=len(body))
    payload = chunked(body, [300]) if "chunked" in framing else body
    if "Content-Type" in framing:
        request = f"POST / HTTP/1.1\r\nHost: x\r\n{framing}Connection: close\r\n\r\n".encode()
    else:
        request = head("b", framing + "Connection: close\r\n")
    with BackgroundServer(receiver, drain_timeout=2, header_timeout=2.0) as server:
        with connect(server) as sock:
            sock.sendall(request + payload)
            assert status_of(read_all(sock)) == 202
        assert receiver.budget.used == 0  # all given back
    assert handler.used == [reserved]
