"""The SCF handler's HTTP/1.1 client (`cos_http`): what it sends, accepts and refuses.

Answers are parsed from bytes first (table-first, no sockets), then the connection handling is
checked against a scripted TCP server on 127.0.0.1 that answers each request with canned bytes.
"""

import io
import socket
import threading
import time

import pytest

from runtime.tencent_cos_source.cos_http import (
    DRAIN_LIMIT,
    MAX_HEADERS,
    MAX_LINE,
    Connection,
    ProtocolError,
    encode_request,
    read_response,
)

NEXT = b"HTTP/1.1 299 Next\r\nContent-Length: 0\r\n\r\n"  # proves where the reader stopped


def answer(raw: bytes, method: str = "POST"):
    """(status, headers, reusable, the status of a following answer when reusable)."""
    reader = io.BufferedReader(io.BytesIO(raw + NEXT))
    response, reusable = read_response(reader, method)
    following = read_response(reader)[0].status if reusable else None
    return response.status, response.headers, reusable, following


ACCEPTED = [
    (
        "content-length, keep-alive by default",
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello",
        (202, True),
    ),
    ("empty reason phrase", b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", (200, True)),
    ("no reason phrase at all", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", (200, True)),
    ("bare LF line ends", b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", (200, True)),
    (
        "Connection: close",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        (200, False),
    ),
    (
        "Connection with several tokens",
        b"HTTP/1.1 200 OK\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n",
        (200, False),
    ),
    ("HTTP/1.0 closes by default", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", (200, False)),
    (
        "HTTP/1.0 with keep-alive",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
        (200, True),
    ),
    (
        "chunked with extensions and trailers",
        b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        (503, True),
    ),
    (
        "chunked, upper-case size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
        + (b"F\r\n" + b"x" * 15 + b"\r\n0\r\n\r\n"),
        (200, True),
    ),
    (
        "chunked not the final coding: body runs to the close",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nwhatever",
        (200, False),
    ),
    (
        "Transfer-Encoding next to Content-Length",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        (200, False),
    ),
    ("delimited by the close", b"HTTP/1.1 200 OK\r\n\r\nuntil the end", (200, False)),
    ("204 has no body", b"HTTP/1.1 204 No Content\r\n\r\n", (204, True)),
    ("304 has no body", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", (304, True)),
    (
        "interim 100 Continue before the answer",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
        (201, True),
    ),
    (
        "interim 103 Early Hints with headers",
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        (200, True),
    ),
    (
        "repeated Content-Length that agrees",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
        (200, True),
    ),
    (
        "Content-Length too big to be worth reading",
        f"HTTP/1.1 200 OK\r\nContent-Length: {DRAIN_LIMIT + 1}\r\n\r\n".encode(),
        (200, False),
    ),
    (
        "chunked body too big to be worth reading",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{DRAIN_LIMIT + 1:x}\r\n".encode()
        + b"x" * 10,
        (200, False),
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"), [c[1:] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED]
)
def test_accepted_answers(raw, expected):
    status, _, reusable, following = answer(raw)
    assert (status, reusable) == expected
    # A reusable connection must be positioned exactly at the next answer.
    assert following == (299 if reusable else None)


def test_chunked_body_ending_with_the_connection_after_the_last_chunk():
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
    response, reusable = read_response(io.BufferedReader(io.BytesIO(raw)))
    assert (response.status, reusable) == (200, False)


def test_a_head_answer_has_no_body_whatever_its_length():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    assert answer(raw, method="HEAD")[2:] == (True, 299)


def test_header_names_are_lower_cased_repeats_joined_and_folds_unfolded():
    raw = (
        b"HTTP/1.1 429 Too Many\r\nRetry-After:   7 \r\nX-Tag: a\r\nx-tag: b\r\n"
        b"X-Long: first\r\n   second\r\nContent-Length: 0\r\n\r\n"
    )
    status, headers, _, _ = answer(raw)
    assert status == 429
    assert headers["retry-after"] == "7"
    assert headers["x-tag"] == "a, b"
    assert headers["x-long"] == "first second"


def many_headers(count: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\n" + b"X-H: v\r\n" * count + b"Content-Length: 0\r\n\r\n"


REFUSED = [
    ("not HTTP at all", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "malformed status line"),
    ("HTTP/2 status line", b"HTTP/2 200\r\n\r\n", "malformed status line"),
    ("two-digit status", b"HTTP/1.1 20 OK\r\n\r\n", "malformed status line"),
    ("status out of range", b"HTTP/1.1 600 Nope\r\n\r\n", "malformed status line"),
    ("status below range", b"HTTP/1.1 099 Low\r\n\r\n", "malformed status line"),
    ("four-digit status", b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
    ("status not digits", b"HTTP/1.1 2x0 OK\r\n\r\n", "malformed status line"),
    ("signed status", b"HTTP/1.1 +20 OK\r\n\r\n", "malformed status line"),
    ("HTTP/1.2", b"HTTP/1.2 200 OK\r\n\r\n", "malformed status line"),
    ("lower-case protocol", b"http/1.1 200 OK\r\n\r\n", "malformed status line"),
    ("two spaces before the status", b"HTTP/1.1  200 OK\r\n\r\n", "malformed status line"),
    (
        "non-ASCII digits in the status",
        "HTTP/1.1 2\u00b20 OK\r\n\r\n".encode("latin-1"),
        "malformed status line",
    ),
    ("101 Switching Protocols", b"HTTP/1.1 101 Switching\r\n\r\n", "101"),
    ("header without a colon", b"HTTP/1.1 200 OK\r\nBroken\r\n\r\n", "malformed header"),
    ("space in a header name", b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "malformed header"),
    ("closed inside the headers", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "inside"),
    (
        "status line too long",
        b"HTTP/1.1 200 " + b"x" * MAX_LINE + b"\r\n\r\n",
        "status line longer",
    ),
    (
        "header line too long",
        b"HTTP/1.1 200 OK\r\nX: " + b"x" * MAX_LINE + b"\r\n\r\n",
        "header line longer",
    ),
    ("too many headers", many_headers(MAX_HEADERS + 1), "more than"),
    (
        "Content-Length that disagrees with itself",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        "invalid Content-Length",
    ),
    ("negative Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid"),
    (
        "non-ASCII digits in Content-Length",
        "HTTP/1.1 200 OK\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1"),
        "invalid Content-Length",
    ),
    (
        "body shorter than its Content-Length",
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        "ended after 3 of 10 bytes",
    ),
    (
        "chunk size that is not hex",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
        "invalid chunk size",
    ),
    (
        "empty chunk size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
        "invalid chunk size",
    ),
    (
        "chunk longer than its size",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
        "not followed by CRLF",
    ),
    (
        "chunked body cut short",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "ended after",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_answers(raw, message):
    with pytest.raises(ProtocolError, match=message):
        read_response(io.BufferedReader(io.BytesIO(raw)))


def test_many_headers_up_to_the_limit_are_fine():
    assert answer(many_headers(MAX_HEADERS - 1))[0] == 200


def test_no_answer_at_all_is_a_connection_error():
    with pytest.raises(ConnectionResetError, match="without answering"):
        read_response(io.BufferedReader(io.BytesIO(b"")))


def test_request_bytes():
    raw = encode_request(
        "POST", "/gateway/bus?x=1", "sink:8080", {"Content-Type": "application/json"}, b"{}"
    )
    assert raw == (
        b"POST /gateway/bus?x=1 HTTP/1.1\r\nHost: sink:8080\r\nContent-Length: 2\r\n"
        b"Content-Type: application/json\r\n\r\n{}"
    )


@pytest.mark.parametrize(
    ("method", "target", "headers", "message"),
    [
        ("POST", "/", {"X-A": "ok\r\nX-Injected: 1"}, "control character"),
        ("POST", "/", {"X-A": "nul\x00"}, "control character"),
        ("POST", "/", {"Bad Name": "v"}, "not allowed"),
        ("POST", "/", {"X-A:": "v"}, "not allowed"),
        ("POST", "/", {"content-length": "5"}, "not allowed"),
        ("POST", "/", {"Host": "elsewhere"}, "not allowed"),
        ("POST", "/", {"Transfer-Encoding": "chunked"}, "not allowed"),
        ("POST", "/", {"X-A": "snow \u2603"}, "Latin-1"),
        ("POST", "/a b", {}, "invalid request target"),
        ("POST", "/a\r\nX: 1", {}, "invalid request target"),
        ("POST", "", {}, "invalid request target"),
        ("PO ST", "/", {}, "invalid HTTP method"),
    ],
)
def test_requests_that_could_break_their_framing_are_refused(method, target, headers, message):
    with pytest.raises(ValueError, match=message):
        encode_request(method, target, "sink", headers, b"")


def test_a_tab_in_a_header_value_is_allowed():
    assert b"X-A: a\tb\r\n" in encode_request("POST", "/", "sink", {"X-A": "a\tb"}, b"")


@pytest.mark.parametrize(
    ("host", "port", "tls", "expected"),
    [
        ("sink.example.com", 80, None, "sink.example.com"),
        ("sink.example.com", 8080, None, "sink.example.com:8080"),
        ("sink.example.com", 443, object(), "sink.example.com"),
        ("sink.example.com", 80, object(), "sink.example.com:80"),
        ("::1", 8080, None, "[::1]:8080"),
        ("::1", 80, None, "[::1]"),
    ],
)
def test_host_header(host, port, tls, expected):
    assert Connection(host, port, 1.0, tls=tls).host_header == expected


SILENT = b"(never answers)"


class ScriptedServer:
    """Accepts connections on 127.0.0.1 and answers request n with `script[n]`.

    An answer of None means: close the connection without answering; SILENT: keep it open and never
    answer. `connections` counts accepts;
    `requests` holds each request's raw bytes (head and Content-Length body).
    """

    def __init__(self, script: list[bytes | None], close_after_each: bool = False) -> None:
        self.script = list(script)
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests: list[bytes] = []
        self._closed = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while self.script:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                length = int(head.split(b"Content-Length: ", 1)[1].split(b"\r\n", 1)[0])
                self.requests.append(head + reader.read(length))
                reply = self.script.pop(0)
                if reply is None:
                    return
                if reply is SILENT:
                    self._closed.wait(10)
                    return
                conn.sendall(reply)
                if self.close_after_each:
                    return

    def close(self) -> None:
        self._closed.set()
        self._listener.close()


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.fixture
def scripted():
    servers = []

    def start(*script, **options):
        servers.append(ScriptedServer(list(script), **options))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_keep_alive_carries_every_request_over_one_connection(scripted):
    server = scripted(OK, b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", OK)
    conn = Connection("127.0.0.1", server.port, 2.0)
    statuses = [conn.request("POST", "/p", {"X-N": str(n)}, b"body").status for n in range(3)]
    assert statuses == [200, 503, 200]
    assert server.connections == 1
    assert (
        server.requests[0]
        == (
            f"POST /p HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Length: 4\r\n"
            "X-N: 0\r\n\r\nbody"
        ).encode()
    )
    conn.close()


def test_connection_close_makes_the_next_request_reconnect(scripted):
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    server = scripted(closing, closing, close_after_each=True)
    conn = Connection("127.0.0.1", server.port, 2.0)
    assert conn.request("POST", "/", {}, b"1").status == 200
    assert not conn.is_open
    assert conn.request("POST", "/", {}, b"2").status == 200
    assert server.connections == 2


def test_a_connection_the_server_dropped_fails_once_then_reconnects(scripted):
    server = scripted(OK, None, OK)  # the second request finds the connection closed
    conn = Connection("127.0.0.1", server.port, 2.0)
    assert conn.request("POST", "/", {}, b"1").status == 200
    with pytest.raises(OSError):
        conn.request("POST", "/", {}, b"2")
    assert not conn.is_open
    assert conn.request("POST", "/", {}, b"3").status == 200
    assert server.connections == 2


def test_a_silent_server_times_out_and_the_connection_is_dropped(scripted):
    server = scripted(SILENT)
    conn = Connection("127.0.0.1", server.port, 0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        conn.request("POST", "/", {}, b"x")
    assert time.monotonic() - started < 2
    assert not conn.is_open


def test_a_garbled_answer_drops_the_connection(scripted):
    server = scripted(b"HTTP/1.1 200 OK\r\nBroken\r\n\r\n", OK)
    conn = Connection("127.0.0.1", server.port, 2.0)
    with pytest.raises(ProtocolError):
        conn.request("POST", "/", {}, b"x")
    assert not conn.is_open


def test_nothing_listening_is_a_connection_error():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionRefusedError):
        Connection("127.0.0.1", port, 1.0).request("POST", "/", {}, b"x")
