"""HTTP/1.1 client for the one exchange the handler makes: POST a body, read the answer's status.

Why not `http.client`: importing it costs a cold SCF instance about 27 ms, half of the handler's
whole import, because it loads the `email` package to parse headers into a `Message` and `ssl`
even for plain-http sinks. The handler sends Content-Length bodies and needs only the status and
`Retry-After` of the answer, so this module does that over `socket` alone; `ssl` is imported by
the caller only for https sinks. What it accepts is pinned by tests/runtime/test_cos_http.py:
Content-Length, chunked and close-delimited answers, interim 1xx, keep-alive rules, and a clear
`ProtocolError` (never a hang or a reuse of a confused connection) for anything malformed.
"""

from __future__ import annotations

import socket

# Same limits as http.client: a longer status or header line, or more headers, is refused.
MAX_LINE = 65536
MAX_HEADERS = 100
# The answer's body is never used, only read so the connection can carry the next request; past
# this size closing and reconnecting is cheaper than reading it.
DRAIN_LIMIT = 1 << 20
_READ_SIZE = 65536

# Character sets rather than regular expressions: compiling patterns is a cold-start cost too.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
_CONTROL_CHARS = frozenset(map(chr, (*range(0x20), 0x7F)))
_FORBIDDEN_IN_VALUE = _CONTROL_CHARS - {"\t"}
_FORBIDDEN_IN_TARGET = _CONTROL_CHARS | {" "}
_FRAMING_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.1 this client can read; the connection is dropped."""


class Response:
    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers  # lower-case names; repeated fields joined with ", "


class Connection:
    """One keep-alive connection to host:port, opened on first use and after the server closes it.

    Not thread-safe: the handler gives each worker thread its own.
    """

    def __init__(self, host: str, port: int, timeout: float, tls=None) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls  # an ssl.SSLContext for https, None for http
        self._sock: socket.socket | None = None
        self._reader = None
        default_port = 443 if tls is not None else 80
        name = f"[{host}]" if ":" in host else host  # an IPv6 literal goes in brackets
        self.host_header = name if port == default_port else f"{name}:{port}"

    @property
    def is_open(self) -> bool:
        return self._sock is not None

    def request(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Send one request and read the whole answer. Raises OSError or ProtocolError."""
        message = encode_request(method, target, self.host_header, headers, body)
        try:
            if self._sock is None:
                self._open()
            else:
                self._sock.settimeout(self.timeout)
            self._sock.sendall(message)
            response, reusable = read_response(self._reader, method)
        except BaseException:
            self.close()
            raise
        if not reusable:
            self.close()
        return response

    def close(self) -> None:
        reader, sock = self._reader, self._sock
        self._reader = self._sock = None
        if reader is not None:
            reader.close()
        if sock is not None:
            sock.close()

    def _open(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        try:
            # One sendall per request already; this keeps Nagle from holding back its last segment.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                sock = self.tls.wrap_socket(sock, server_hostname=self.host)
            self._reader = sock.makefile("rb")
        except BaseException:
            sock.close()
            raise
        self._sock = sock


def encode_request(
    method: str, target: str, host_header: str, headers: dict[str, str], body: bytes
) -> bytes:
    """The request's bytes. Refuses what would let a value break out of its header line."""
    if not _is_token(method):
        raise ValueError(f"invalid HTTP method {method!r}")
    if not target or not _FORBIDDEN_IN_TARGET.isdisjoint(target):
        raise ValueError(f"invalid request target {target!r}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}", f"Content-Length: {len(body)}"]
    for name, value in headers.items():
        if not _is_token(name) or name.lower() in _FRAMING_HEADERS:
            raise ValueError(f"header name {name!r} is not allowed")
        if not _FORBIDDEN_IN_VALUE.isdisjoint(value):
            raise ValueError(f"header {name} holds a control character")
        lines.append(f"{name}: {value}")
    try:
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("header values must be Latin-1 text") from None
    return head + body


def read_response(reader, method: str = "POST") -> tuple[Response, bool]:
    """Read one final answer from a buffered binary reader: (response, connection reusable).

    The body is read and discarded (up to DRAIN_LIMIT) so the connection can carry the next one.
    """
    while True:
        minor_version, status = _read_status_line(reader)
        headers = _read_headers(reader)
        if status == 101:
            raise ProtocolError("unexpected 101 Switching Protocols")
        if status >= 200:
            break  # 100 Continue, 103 Early Hints and other interim answers precede the real one

    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    reusable = "keep-alive" in tokens if minor_version == "0" else "close" not in tokens
    if method == "HEAD" or status in (204, 304):
        return Response(status, headers), reusable
    if "transfer-encoding" in headers:
        codings = [coding.strip().lower() for coding in headers["transfer-encoding"].split(",")]
        # RFC 9112 6.3: when chunked is not the final coding the body runs to the end of the
        # connection; Transfer-Encoding next to Content-Length means the connection must close.
        if codings[-1] != "chunked" or "content-length" in headers:
            return Response(status, headers), False
        return Response(status, headers), reusable and _drain_chunked(reader)
    if "content-length" in headers:
        length = _content_length(headers["content-length"])
        if length > DRAIN_LIMIT:
            return Response(status, headers), False
        _read_exactly(reader, length)
        return Response(status, headers), reusable
    # Delimited by the server closing the connection: nothing more to learn from it.
    return Response(status, headers), False


def _read_line(reader, what: str) -> bytes:
    line = reader.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise ProtocolError(f"{what} longer than {MAX_LINE} bytes")
    return line


def _is_token(text: str) -> bool:
    return bool(text) and _TOKEN_CHARS.issuperset(text)


def _read_status_line(reader) -> tuple[str, int]:
    """(minor version, status) of `HTTP/1.x SSS[ reason]`."""
    line = _read_line(reader, "status line")
    if not line:
        raise ConnectionResetError("the server closed the connection without answering")
    version, _, rest = line.rstrip(b"\r\n").decode("latin-1").partition(" ")
    code, reason = rest[:3], rest[3:]
    if (
        version not in ("HTTP/1.0", "HTTP/1.1")
        or not (code.isascii() and code.isdigit() and 100 <= int(code) <= 599)
        or reason[:1] not in ("", " ")
    ):
        raise ProtocolError(f"malformed status line {line[:80]!r}")
    return version[-1], int(code)


def _read_headers(reader) -> dict[str, str]:
    headers: dict[str, str] = {}
    last = None
    for _ in range(MAX_HEADERS + 1):
        line = _read_line(reader, "header line")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise ProtocolError("the connection closed inside the answer's headers")
        text = line.rstrip(b"\r\n").decode("latin-1")
        if text[0] in " \t" and last is not None:  # obsolete line folding: one space instead
            headers[last] += " " + text.strip(" \t")
            continue
        name, colon, value = text.partition(":")
        if not colon or not _is_token(name):
            raise ProtocolError(f"malformed header line {line[:80]!r}")
        last = name.lower()
        value = value.strip(" \t")
        headers[last] = f"{headers[last]}, {value}" if last in headers else value
    raise ProtocolError(f"more than {MAX_HEADERS} header lines")


def _content_length(value: str) -> int:
    # Repeated Content-Length fields are acceptable only when they all agree (RFC 9110 8.6).
    values = {part.strip() for part in value.split(",")}
    number = values.pop() if len(values) == 1 else ""
    if not (number.isascii() and number.isdigit()):
        raise ProtocolError(f"invalid Content-Length {value[:40]!r}")
    return int(number)


def _read_exactly(reader, length: int) -> None:
    remaining = length
    while remaining:
        chunk = reader.read(min(remaining, _READ_SIZE))
        if not chunk:
            done = length - remaining
            raise ProtocolError(f"the answer's body ended after {done} of {length} bytes")
        remaining -= len(chunk)


def _drain_chunked(reader) -> bool:
    """Read a chunked body to its end; False when it is too big to be worth reading."""
    total = 0
    while True:
        size_text = _read_line(reader, "chunk size line").split(b";", 1)[0].strip()
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError(f"invalid chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > DRAIN_LIMIT:
            return False
        _read_exactly(reader, size)
        if _read_line(reader, "chunk end") not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk is not followed by CRLF")
    for _ in range(MAX_HEADERS + 1):  # trailer fields, ignored
        line = _read_line(reader, "trailer line")
        if line in (b"\r\n", b"\n"):
            return True
        if not line:
            return False  # closed right after the last chunk: the body is whole, the connection not
    raise ProtocolError(f"more than {MAX_HEADERS} trailer lines")
