"""A CloudEvents sink for tests: records every event it receives and misbehaves on request.

Binary and structured requests are validated with the cloudevents SDK (`cloudevents.core`); the
SDK has no batch support, so `application/cloudevents-batch+json` arrays are split here and each
element goes through the SDK's JSON format. Attributes are recorded as the strings that were on the
wire (binary headers percent-decoded), so tests can assert exact values such as the RFC 3339 `time`.

Requests that are not valid CloudEvents are answered 400 and recorded in `requests` only. Paths
under `/_sink/` are a control API for the out-of-process mode (`python -m tests.fakes.sink`).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from cloudevents.core.bindings.http import HTTPMessage, from_binary, from_structured
from cloudevents.core.exceptions import BaseCloudEventException
from cloudevents.core.formats.json import JSONFormat

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
REQUIRED_ATTRIBUTES = ("id", "source", "type", "specversion")
CONTROL_PREFIX = "/_sink/"


@dataclass(frozen=True)
class ReceivedEvent:
    attributes: dict[str, str]
    data: bytes
    headers: dict[str, str]
    mode: str  # "binary" | "structured" | "batch"
    path: str

    @property
    def id(self) -> str:
        return self.attributes["id"]

    def json(self):
        return json.loads(self.data)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    received_at: float = field(default=0.0)


class InvalidEvent(ValueError):
    pass


def _content_type(headers: dict[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _json_data_bytes(element: dict) -> bytes:
    """The data of a JSON-format event as bytes: base64 decoded, or JSON/text re-encoded."""
    if "data_base64" in element:
        return base64.b64decode(element["data_base64"])
    if "data" not in element:
        return b""
    value = element["data"]
    content_type = str(element.get("datacontenttype", "application/json"))
    if isinstance(value, str) and not JSONFormat.JSON_CONTENT_TYPE_PATTERN.match(content_type):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _check_required(attributes: dict) -> None:
    # The SDK silently invents a missing id/specversion; a sink must not.
    missing = [name for name in REQUIRED_ATTRIBUTES if not attributes.get(name)]
    if missing:
        raise InvalidEvent(f"missing required attribute(s): {', '.join(missing)}")


def _parse_json_element(element: object) -> tuple[dict[str, str], bytes]:
    if not isinstance(element, dict):
        raise InvalidEvent("a JSON-format event must be an object")
    _check_required(element)
    try:
        JSONFormat().read(None, json.dumps(element))
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise InvalidEvent(str(error)) from error
    attributes = {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in element.items()
        if name not in ("data", "data_base64")
    }
    return attributes, _json_data_bytes(element)


def parse_request(headers: dict[str, str], body: bytes) -> list[tuple[str, dict[str, str], bytes]]:
    """One HTTP request as [(mode, attributes, data)]; InvalidEvent if it is not valid."""
    content_type = _content_type(headers)
    if any(name.startswith("ce-") for name in headers):
        attributes = {
            name[3:]: unquote(value) for name, value in headers.items() if name[:3] == "ce-"
        }
        if "content-type" in headers:
            attributes["datacontenttype"] = headers["content-type"]
        _check_required(attributes)
        try:
            from_binary(HTTPMessage(headers=headers, body=body), JSONFormat())
        except (BaseCloudEventException, ValueError, TypeError) as error:
            raise InvalidEvent(str(error)) from error
        return [("binary", attributes, body)]
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InvalidEvent(f"body is not JSON: {error}") from error
    if content_type == BATCH_CONTENT_TYPE:
        if not isinstance(document, list):
            raise InvalidEvent("a batch must be a JSON array")
        return [("batch", *_parse_json_element(element)) for element in document]
    if content_type != STRUCTURED_CONTENT_TYPE:
        raise InvalidEvent(f"not a CloudEvent (no ce- headers, content type {content_type!r})")
    attributes, data = _parse_json_element(document)
    # Checked once more through the SDK's own HTTP entry point, as a receiver would.
    try:
        from_structured(HTTPMessage(headers=headers, body=body), JSONFormat())
    except (BaseCloudEventException, ValueError, TypeError) as error:
        raise InvalidEvent(str(error)) from error
    return [("structured", attributes, data)]


def localhost_tls(ca_file: str | os.PathLike[str]) -> ssl.SSLContext:
    """A server TLS context for 127.0.0.1 from a throwaway CA, whose certificate goes to ca_file.

    A client trusts it the way an operator trusts a private CA: SSL_CERT_FILE=ca_file.
    """
    import trustme  # a test dependency; the sink's command line does not need it

    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    authority.cert_pem.write_to_path(str(ca_file))
    return context


class _SinkServer(ThreadingHTTPServer):
    # socketserver's default listen backlog is 5: a burst of concurrent senders overflows it and
    # waits for SYN retransmits (1 s, then 3 s), which looks like a slow machine in the figures.
    request_queue_size = 1024


class CloudEventsSink:
    """In-process sink on 127.0.0.1 with an ephemeral port. Thread-safe.

    With `tls` (a server-side SSLContext) it serves https, for testing senders' certificate checks.
    """

    def __init__(self, port: int = 0, status: int = 200, tls: ssl.SSLContext | None = None) -> None:
        self._requested_port = port
        self._default_status = status
        self._tls = tls
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> CloudEventsSink:
        handler = type("SinkHandler", (_Handler,), {"sink": self})
        self._server = _SinkServer(("127.0.0.1", self._requested_port), handler)
        self._server.daemon_threads = True
        if self._tls is not None:
            self._server.socket = self._tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> CloudEventsSink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "sink not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/"

    # -- behaviour ---------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self._events: list[ReceivedEvent] = []
            self._requests: list[RecordedRequest] = []
            self._fail_remaining = 0
            self._fail_status = 503
            self._fail_retry_after: int | None = None
            self._forced_status: int | None = None
            self._latency = 0.0
            self._fail_when: list[tuple[Callable[[RecordedRequest], bool], int]] = []

    def clear(self) -> None:
        """Forget the events and requests seen; keep latency and failure settings."""
        with self._lock:
            self._events = []
            self._requests = []

    def fail_next(self, n: int, status: int = 503, retry_after: int | str | None = None) -> None:
        """Answer the next n requests with `status` (and `Retry-After`) recording no event."""
        with self._lock:
            self._fail_remaining, self._fail_status = n, status
            self._fail_retry_after = retry_after

    def respond_with(self, status: int | None) -> None:
        """Answer every later request with `status` (None: normal). Non-2xx records nothing."""
        with self._lock:
            self._forced_status = status

    def fail_when(self, predicate: Callable[[RecordedRequest], bool], status: int = 503) -> None:
        """Answer `status` to every request for which predicate(request) is true."""
        with self._lock:
            self._fail_when.append((predicate, status))

    def set_latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = seconds

    @property
    def events(self) -> list[ReceivedEvent]:
        with self._lock:
            return list(self._events)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedEvent]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._events) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"sink got {len(self._events)} event(s), expected {count} "
                        f"({len(self._requests)} request(s) seen)"
                    )
                self._lock.wait(remaining)
            return list(self._events)

    # -- request handling (called from server threads) ---------------------------------------------
    def _status_for(self, request: RecordedRequest) -> tuple[int | None, int | None]:
        """(forced status or None to process normally, Retry-After seconds or None)."""
        with self._lock:
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                return self._fail_status, self._fail_retry_after
            for predicate, status in self._fail_when:
                if predicate(request):
                    return status, None
            return self._forced_status, None

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, int | None]:
        with self._lock:
            latency = self._latency
        if latency:
            time.sleep(latency)
        probe = RecordedRequest(method, path, headers, body, 0, time.time())
        status, retry_after = self._status_for(probe)
        received: list[ReceivedEvent] = []
        if status is None or 200 <= status < 300:
            try:
                parsed = parse_request(headers, body)
            except InvalidEvent:
                status = 400
            else:
                status = status or self._default_status
                received = [ReceivedEvent(a, d, headers, m, path) for m, a, d in parsed]
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, headers, body, status, probe.received_at)
            )
            if 200 <= status < 300:
                self._events.extend(received)
            self._lock.notify_all()
        return status, retry_after

    def _control(self, method: str, path: str) -> tuple[int, dict]:
        if path == CONTROL_PREFIX + "stats" and method == "GET":
            with self._lock:
                return 200, {"events": len(self._events), "requests": len(self._requests)}
        if path == CONTROL_PREFIX + "clear" and method == "POST":
            self.clear()
            return 200, {}
        return 404, {"error": "unknown control path"}


class _Handler(BaseHTTPRequestHandler):
    sink: CloudEventsSink
    protocol_version = "HTTP/1.1"  # keep-alive, as real sinks and the senders under test use

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(
        self, status: int, payload: dict | None = None, retry_after: int | None = None
    ) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _dispatch(self) -> None:
        body = self._read_body()
        if self.path.startswith(CONTROL_PREFIX):
            self._answer(*self.sink._control(self.command, self.path))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        status, retry_after = self.sink._handle(self.command, self.path, headers, body)
        self._answer(status, retry_after=retry_after)

    do_POST = do_PUT = do_GET = _dispatch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CloudEvents sink for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--status", type=int, default=None, help="answer every request with this")
    args = parser.parse_args(argv)
    sink = CloudEventsSink(port=args.port).start()
    sink.set_latency(args.latency)
    sink.respond_with(args.status)
    print(f"url={sink.url}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    sink.stop()
    print(f"events={len(sink.events)} requests={len(sink.requests)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
