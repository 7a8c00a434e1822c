"""The receiving core's body reader over real sockets: exact Content-Length bodies arriving in
pieces, chunked bodies, bodies that end early, bodies over the limit, senders that go away, and
a pipelined request right after a body (nothing read past Content-Length)."""

from __future__ import annotations

import asyncio
import random
import socket
import time

import pytest

from runtime.receiver import ArrivingBody, BackgroundServer, BodyAborted, BodyTooLarge, Receiver
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


# ---- head start: acting on a binary-mode event while its body arrives


class Streaming(Accepting):
    """A HeadStart that reads the arriving body slice by slice; notes what it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.started_at: list[int] = []  # bytes arrived when each head start began
        self.outcomes: list[object] = []  # bytes read, or the exception that ended the read

    def head_start(self, event, arriving: ArrivingBody):
        self.started_at.append(arriving.filled)

        async def read() -> bytes:
            got = bytearray()
            try:
                async for piece in arriving.slices(1000):
                    got += piece
            except BaseException as error:
                self.outcomes.append(error)
                raise
            self.outcomes.append(bytes(got))
            return bytes(got)

        return asyncio.ensure_future(read())

    async def __call__(self, delivery):
        if delivery.head_start is not None:
            assert await delivery.head_start == bytes(delivery.body)
        return await super().__call__(delivery)


def serve_streaming(handler: Streaming, **options):
    receiver = Receiver(
        handler,
        name="ahead",
        max_body_bytes=LIMIT,
        body_timeout=options.pop("body_timeout", 2.0),
        head_start=handler.head_start,
        **options,
    )
    return BackgroundServer(receiver, drain_timeout=2, header_timeout=2.0)


def test_a_head_start_reads_the_body_as_it_arrives_and_reaches_the_handler():
    body = random.Random(3).randbytes(10_000)
    handler = Streaming()
    with serve_streaming(handler) as server, connect(server) as sock:
        sock.sendall(head("ahead", f"Content-Length: {len(body)}\r\nConnection: close\r\n"))
        send_in_pieces(sock, body, [700])
        assert status_of(read_all(sock)) == 202
    assert handler.started_at == [0]  # before any of the body
    assert handler.outcomes == [body]
    assert bytes(handler.deliveries[0].body) == body


@pytest.mark.parametrize("how", ["disconnect", "deadline"])
def test_a_body_that_does_not_arrive_whole_ends_the_head_start(how):
    handler = Streaming()
    with serve_streaming(handler, body_timeout=0.5) as server:
        with connect(server) as sock:
            sock.sendall(head("cut", "Content-Length: 5000\r\nConnection: close\r\n") + b"x" * 2500)
            if how == "deadline":
                assert status_of(read_all(sock)) == 408
        deadline = time.monotonic() + 5
        while not handler.outcomes:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert handler.deliveries == []
    [ended] = handler.outcomes
    assert isinstance(ended, (BodyAborted, asyncio.CancelledError)), ended


@pytest.mark.parametrize(
    ("request_head", "payload", "status"),
    [
        # chunked: no Content-Length to send on
        (
            head("c", "Transfer-Encoding: chunked\r\nConnection: close\r\n"),
            chunked(b"x" * 3000, [1000]),
            202,
        ),
        # structured mode: the event is in the body
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/cloudevents+json\r\n"
            b"Content-Length: 55\r\nConnection: close\r\n\r\n",
            b'{"specversion":"1.0","id":"s","source":"s","type":"tt"}',
            202,
        ),
        # headers that are not a valid event: answered 400 once the body is read, as always
        (
            f"POST / HTTP/1.1\r\nHost: x\r\n{BINARY}Content-Length: 3000\r\n"
            "Connection: close\r\n\r\n".encode(),
            b"x" * 3000,
            400,
        ),
    ],
    ids=["chunked", "structured", "no-id"],
)
def test_no_head_start_without_a_binary_event_and_a_content_length(request_head, payload, status):
    handler = Streaming()
    with serve_streaming(handler) as server, connect(server) as sock:
        sock.sendall(request_head + payload)
        answer = read_all(sock)
    assert handler.started_at == []
    assert status_of(answer) == status, answer[:200]


def test_no_head_start_when_requests_are_authenticated():
    handler = Streaming()
    receiver = Receiver(
        handler,
        name="signed",
        max_body_bytes=LIMIT,
        head_start=handler.head_start,
        authenticate=lambda request, body: None,
    )
    with BackgroundServer(receiver, drain_timeout=2) as server, connect(server) as sock:
        sock.sendall(head("a", "Content-Length: 3000\r\nConnection: close\r\n") + b"x" * 3000)
        assert status_of(read_all(sock)) == 202
    assert handler.started_at == []


def test_arriving_body_slices_wait_for_their_bytes_and_abort_with_the_cause():
    async def scenario():
        arriving = ArrivingBody(10)
        seen: list[bytes] = []

        async def consume():
            async for piece in arriving.slices(4):
                seen.append(bytes(piece))

        consumer = asyncio.ensure_future(consume())
        await asyncio.sleep(0)
        arriving.append(b"abc")
        await asyncio.sleep(0)
        assert seen == []  # 3 of the 4 bytes the first slice needs
        arriving.append(b"defgh")
        await asyncio.sleep(0)
        assert seen == [b"abcd", b"efgh"]  # both have arrived; "i" waits for "j"
        with pytest.raises(BodyTooLarge):
            arriving.append(b"ijk")  # one byte over the declared 10
        arriving.abort(ConnectionResetError("gone"))
        with pytest.raises(BodyAborted) as caught:
            await consumer
        assert isinstance(caught.value.__cause__, ConnectionResetError)
        assert seen == [b"abcd", b"efgh"]
        assert not arriving.complete

    asyncio.run(scenario())
