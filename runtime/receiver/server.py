"""Serving a Receiver: the process entry point (signals, draining, exit code) and a thread runner.

Shutdown order on SIGTERM/SIGINT: readiness and new POSTs answer 503, the listening socket closes
(no new connections), requests in flight get up to `drain_timeout` seconds to finish; those still
unfinished then are answered 503 (their handlers are cancelled, so nothing they did was
acknowledged and the sender retries), connections are closed, the `on_shutdown` callbacks run
(close pools, each given at most SHUTDOWN_HOOK_SECONDS) and the process exits 0. The whole takes
at most `drain_timeout` + about 3 seconds: set DRAIN_TIMEOUT_SECONDS below the pod's
terminationGracePeriodSeconds by at least that margin.

Connections whose first request head is not complete within `header_timeout` seconds are
answered 408 and closed; a keep-alive connection idle that long after an answer is closed: an idle
or trickling connection costs a file descriptor for a bounded time, never a request slot.

Header memory: a request head is at most MAX_HEADERS lines of MAX_HEADER_FIELD_BYTES (longer:
aiohttp's plain-text 400), and at most `max_connections` connections are open at once (those
beyond are answered 503 `busy` and closed as soon as they are accepted; PROBE_CONNECTIONS more
are accepted but serve only the probes, so requests waiting for their objects never make the
liveness probe fail), so unfinished heads cost at most (max_connections + PROBE_CONNECTIONS) x
the measured 480 KB. aiohttp's own decompression is off:
a compressed body is refused 415 by the receiver before it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import NoReturn, Protocol, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .app import Receiver
from .logs import configure_logging, log_fields
from .settings import (
    MAX_HEADER_FIELD_BYTES,
    MAX_HEADERS,
    PROBE_CONNECTIONS,
    EnvReader,
    ServerSettings,
    load_or_exit,
)

ShutdownHook = Callable[[], Awaitable[None]]
SHUTDOWN_HOOK_SECONDS = 1.0
# After the drain, connections still writing an answer get this long before they are closed.
CLOSE_SECONDS = 1.0
S = TypeVar("S")


async def serve(
    receiver: Receiver,
    *,
    host: str,
    port: int,
    drain_timeout: float,
    stop: asyncio.Event,
    started: Callable[[int], None] | None = None,
    on_shutdown: list[ShutdownHook] | None = None,
    header_timeout: float = 10.0,
    max_connections: int = ServerSettings.max_connections,
) -> None:
    """Serve until `stop` is set, then drain. `started(port)` gets the bound port."""
    runner = _CappedRunner(
        max_connections,
        receiver.app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=CLOSE_SECONDS,
        # Never read (and wait for) the unread rest of a refused body; the connection is closed.
        lingering_time=0,
        # aiohttp closes an idle keep-alive connection this long after its last answer. A first
        # request head that is not complete at `header_timeout` is answered 408 by the runner
        # (below) just before aiohttp would close the connection silently.
        keepalive_timeout=header_timeout + HEADER_408_LEAD_SECONDS,
        max_headers=MAX_HEADERS,
        max_field_size=MAX_HEADER_FIELD_BYTES,
        max_line_size=MAX_HEADER_FIELD_BYTES,
        # Bodies are stored as sent, and counted as read: never decompressed (415 instead).
        auto_decompress=False,
    )
    runner.on_refuse = receiver.metrics.rejected.labels("too-many-connections").inc
    runner.header_timeout = header_timeout
    runner.on_header_timeout = receiver.metrics.rejected.labels("header-timeout").inc
    runner.probe_only = receiver.probe_only
    runner.probe_started = receiver.probe_started
    runner.busy = receiver.busy
    await runner.setup()
    stall_watch = asyncio.ensure_future(runner.abort_stalled_writers())
    protocol_errors = _ProtocolErrors(receiver)
    logging.getLogger("aiohttp.server").addFilter(protocol_errors)
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    bound_port = _bound_port(runner, port)
    log_fields(receiver.logger, logging.INFO, "listening", port=bound_port)
    if started is not None:
        started(bound_port)
    try:
        await stop.wait()
    finally:
        receiver.start_draining()
        log_fields(receiver.logger, logging.INFO, "draining", timeout_seconds=drain_timeout)
        await site.stop()
        stall_watch.cancel()
        cut_short = await receiver.drain(drain_timeout)
        await runner.cleanup()
        for hook in on_shutdown or ():
            try:
                await asyncio.wait_for(hook(), SHUTDOWN_HOOK_SECONDS)
            except (asyncio.TimeoutError, Exception) as error:
                log_fields(
                    receiver.logger,
                    logging.WARNING,
                    "shutdown hook failed",
                    error_type=type(error).__name__,
                )
        logging.getLogger("aiohttp.server").removeFilter(protocol_errors)
        log_fields(receiver.logger, logging.INFO, "stopped", cut_short=cut_short)


_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 58\r\n\r\n"
    b'{"error":"busy","message":"too many connections; retry"}\r\n'
)


_HEADER_TIMEOUT_BODY = (
    b'{"error":"header-timeout","message":"the request head did not arrive in time"}\r\n'
)
_HEADER_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    + f"Content-Length: {len(_HEADER_TIMEOUT_BODY)}\r\n\r\n".encode()
    + _HEADER_TIMEOUT_BODY
)
# aiohttp's own idle close is set this much later than the header deadline, so a connection whose
# first head is incomplete gets its 408 first.
HEADER_408_LEAD_SECONDS = 0.5
# A connection over the cap serves one probe; the kubelet sends its request as it connects.
PROBE_HEAD_SECONDS = 1.0
# A connection whose answers make no progress this long (its reader stopped reading) is aborted:
# it would hold its place under the cap, and the kernel's buffers, for as long as it liked.
WRITE_STALL_SECONDS = 10.0
WRITE_STALL_CHECK_SECONDS = 1.0


class _Refuse(asyncio.Protocol):
    """A connection over the cap: one 503 and close, nothing read."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        _refuse(transport)


def _refuse(transport: asyncio.WriteTransport) -> None:
    """503 `busy` and close: a connection over the cap, or one that gave way to a newer one."""
    transport.write(_REFUSED)
    transport.close()


class _CappedRunner(web.AppRunner):
    """An AppRunner whose sites accept at most `limit` open connections, plus PROBE_CONNECTIONS
    that serve only /healthz and /readyz (`probe_only`, shared with the Receiver).

    Open connections are counted exactly: a connection counts from the moment it is accepted
    (aiohttp lists it only at `connection_made`, a loop iteration later) until it is lost and no
    POST of it is in progress, and at the cap an idle connection whose sender has gone (its end not
    yet read by this loop) does not count.
    Counting the accepted ones for a fixed second instead kept connections that had already
    closed in the count, so a sender opening a connection per request was refused with far fewer
    than `limit` open. A connection over the cap serves one probe (then it is closed) and is closed
    if its head is not complete within PROBE_HEAD_SECONDS, so clients cannot keep those slots."""

    def __init__(self, limit: int, app: web.Application, **kwargs: object) -> None:
        super().__init__(app, **kwargs)  # type: ignore[arg-type]
        self.limit = limit
        # Accepted, and not yet listed by aiohttp's Server (see _accept).
        self._pending: set[object] = set()
        self.on_refuse: Callable[[], None] = lambda: None
        self.probe_only: set[object] = set()
        self.probe_started: set[object] = set()
        self.busy: set[object] = set()
        # Probe-only connections in the order they were accepted (oldest first).
        self._probe_order: dict[object, None] = {}
        # Evicted before they were made: closed when they are.
        self._doomed: set[object] = set()
        # Connections with unsent answers: (bytes unsent, since when that has not shrunk).
        self._unsent: dict[object, tuple[int, float]] = {}
        self.header_timeout = 10.0
        self.on_header_timeout: Callable[[], None] = lambda: None

    @property
    def server(self):  # type: ignore[override]
        inner = super().server
        return None if inner is None else self._accept

    def _accept(self) -> asyncio.BaseProtocol:
        inner = super().server
        assert inner is not None
        loop = asyncio.get_running_loop()
        counted = self._open_connections(inner.connections)
        if len(counted) >= self.limit:
            # At the cap, and only there: leave out idle connections whose sender has gone but
            # whose end this loop has not read yet (a pool closed and reopened at once).
            counted = {h for h in counted if h in self.busy or not _peer_gone(h)}
        self._forget_closed(counted)
        if len(counted) >= self.limit + PROBE_CONNECTIONS and not self._evict_idle_probe_only():
            self.on_refuse()
            return _Refuse()
        handler = inner()
        probe_only = len(counted) >= self.limit
        if probe_only:
            self.probe_only.add(handler)
            self._probe_order[handler] = None
        self._pending.add(handler)
        # The transport asyncio builds for this protocol schedules `connection_made` (where
        # aiohttp lists the handler) with call_soon right after this returns; a call_soon
        # scheduled from a call_soon runs after it. By then the handler is listed, or its
        # transport never came and it is not a connection.
        loop.call_soon(loop.call_soon, self._made, handler)
        head_seconds = PROBE_HEAD_SECONDS if probe_only else self.header_timeout
        loop.call_later(head_seconds, self._first_head_deadline, handler)
        return handler

    def _forget_closed(self, counted: set[object]) -> None:
        """Drop the probe-only bookkeeping of connections no longer `counted` (closed)."""
        self.probe_only.intersection_update(counted)
        self.probe_started.intersection_update(counted)
        for gone in [h for h in self._probe_order if h not in self.probe_only]:
            del self._probe_order[gone]

    def _evict_idle_probe_only(self) -> bool:
        """Close the oldest probe-only connection that has not sent a request yet, so a new one
        (the kubelet's probe) takes its place: connections that send nothing cannot keep the
        probe slots however fast they reconnect. False when every probe slot is in use."""
        for handler in self._probe_order:
            if handler in self.probe_started:
                continue
            del self._probe_order[handler]
            self.probe_only.discard(handler)
            transport = getattr(handler, "transport", None)
            if transport is None:
                # Accepted in this burst, not made yet: closed as soon as it is (`_made`).
                self._doomed.add(handler)
            else:
                _refuse(transport)
            return True
        return False

    def _made(self, handler: object) -> None:
        """Two loop turns after the accept: the handler is made (listed), or never will be."""
        self._pending.discard(handler)
        if handler in self._doomed:
            self._doomed.discard(handler)
            transport = getattr(handler, "transport", None)
            if transport is not None:
                _refuse(transport)

    async def abort_stalled_writers(self) -> None:
        """Every WRITE_STALL_CHECK_SECONDS: abort connections whose unsent answers have not
        shrunk for WRITE_STALL_SECONDS (a reader that stopped reading: aiohttp has no deadline
        for writing an answer, and such a connection kept its place under the cap for good)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WRITE_STALL_CHECK_SECONDS)
            inner = super().server
            if inner is None:
                continue
            now = loop.time()
            # Here too, not only at the next accept (closed handlers would stay alive until then).
            self._forget_closed(self._open_connections(inner.connections))
            unsent: dict[object, tuple[int, float]] = {}
            for handler in inner.connections:
                transport = getattr(handler, "transport", None)
                size = transport.get_write_buffer_size() if transport is not None else 0
                if not size:
                    continue
                before, since = self._unsent.get(handler, (size + 1, now))
                if size < before:
                    since = now  # progress
                if now - since >= WRITE_STALL_SECONDS:
                    transport.abort()
                    continue
                unsent[handler] = (size, since)
            self._unsent = unsent

    def _open_connections(self, listed: list[object]) -> set[object]:
        """Accepted and not made yet (`_pending`), made and not lost, or lost with a POST still
        in progress (`busy`): what such a request holds is still held, and without counting it
        a sender could pile up requests by sending them and hanging up (the attack review:
        thousands of hung-up requests queued for handler slots). aiohttp lists a handler until
        its task ends, also once its connection is lost and its request is done."""
        counted = self._pending.union(
            h for h in listed if h in self.busy or getattr(h, "transport", None) is not None
        )
        return counted - self._doomed

    def _first_head_deadline(self, handler: object) -> None:
        """408 and close when the connection's first request head is still incomplete.

        aiohttp counts the request heads it has parsed per connection (`_request_count`, also a
        parse error's 400); it exposes no public hook for the head deadline, so this reads that
        counter (tests/runtime/test_receiver_limits.py pins the behaviour to the installed
        aiohttp). Later heads on a keep-alive connection are bounded by aiohttp's idle close."""
        transport = getattr(handler, "transport", None)
        if transport is None or transport.is_closing():
            return
        if getattr(handler, "_request_count", 1):
            return
        self.on_header_timeout()
        transport.write(_HEADER_TIMEOUT)
        transport.close()


def _peer_gone(handler: object) -> bool:
    """Whether the sender of a made connection has closed or reset it, though this loop has not
    read that yet: a non-blocking MSG_PEEK of one byte on a duplicate of its socket (EOF: b"";
    a reset: an error). A connection accepted but not made yet has no transport: not gone."""
    transport = getattr(handler, "transport", None)
    if transport is None:
        return False
    if transport.is_closing():
        # Closing, but still open while it has an answer to flush (bounded by the write stall).
        return not transport.get_write_buffer_size()
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    try:
        with socket.fromfd(sock.fileno(), sock.family, sock.type) as peek:
            return peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except OSError:
        return True


class _ProtocolErrors(logging.Filter):
    """Requests aiohttp refuses itself, before the application sees them (a malformed request
    line, a header over 8190 bytes, a repeated Content-Type, bad chunked framing), are answered
    400 by aiohttp in plain text and logged by it at ERROR with a traceback. They are the sender's
    error: count them (`<name>_requests_rejected_total{reason="bad-http"}`), log one INFO line."""

    def __init__(self, receiver: Receiver) -> None:
        super().__init__()
        self._receiver = receiver

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            self._receiver.metrics.rejected.labels("bad-http").inc()
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info = "malformed HTTP request refused", (), None
            record.fields = {"status": error.code, "error_type": type(error).__name__}
            return self._receiver.logger.isEnabledFor(logging.INFO)
        return True


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested


def run(
    receiver: Receiver,
    *,
    port: int,
    drain_timeout: float,
    host: str = "0.0.0.0",
    on_shutdown: list[ShutdownHook] | None = None,
    header_timeout: float = 10.0,
    max_connections: int = ServerSettings.max_connections,
) -> int:
    """Block serving until SIGTERM or SIGINT; returns the exit code (0 after a clean drain).

    Unlike `asyncio.run`, this does not wait for the default executor's threads at the end: a
    thread stuck on a slow upstream (whose request was already answered 503) would otherwise hold
    the exit until its own timeout, past the pod's grace period. `main()` then exits with
    `os._exit` for the same reason (non-daemon worker threads are joined at interpreter exit).
    """

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await serve(
            receiver,
            host=host,
            port=port,
            drain_timeout=drain_timeout,
            stop=stop,
            on_shutdown=on_shutdown,
            header_timeout=header_timeout,
            max_connections=max_connections,
        )

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    return 0


class _Closable(Protocol):
    async def close(self) -> None: ...


def main(
    program: str,
    read_settings: Callable[[EnvReader], S],
    build: Callable[[S], tuple[Receiver, _Closable]],
) -> NoReturn:
    """A runtime's whole `__main__`: read its settings (one line and exit 2 when invalid), set up
    JSON logs, build the receiver and its outbound client, apply the server settings (limits,
    budget), serve until SIGTERM, close the client, exit the process (0).
    `settings.server` must be the ServerSettings part."""
    settings = load_or_exit(read_settings, program=program)
    configure_logging(settings.server.log_level)
    receiver, client = build(settings)
    receiver.apply(settings.server)
    code = run(
        receiver,
        host=settings.server.host,
        port=settings.server.port,
        drain_timeout=settings.server.drain_timeout_seconds,
        header_timeout=settings.server.header_timeout_seconds,
        max_connections=settings.server.max_connections,
        on_shutdown=[client.close],
    )
    # Everything acknowledged is done and everything unfinished was answered 503; what may still
    # run is a worker thread stuck on the upstream, which the interpreter would wait for.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class BackgroundServer:
    """Serve a Receiver on 127.0.0.1 (ephemeral port) in a thread with its own event loop.

    For tests and benchmarks that drive the receiver from synchronous code:

        with BackgroundServer(receiver) as server:
            requests.post(server.url, ...)
    """

    def __init__(
        self,
        receiver: Receiver,
        *,
        drain_timeout: float = 5.0,
        on_shutdown: list[ShutdownHook] | None = None,
        host: str = "127.0.0.1",
        header_timeout: float = 10.0,
        max_connections: int = ServerSettings.max_connections,
    ) -> None:
        self.receiver = receiver
        self._max_connections = max_connections
        self._header_timeout = header_timeout
        self.host = host
        self.port = 0
        self._drain_timeout = drain_timeout
        self._on_shutdown = on_shutdown
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start(self) -> BackgroundServer:
        self._thread = threading.Thread(target=self._run, name="receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("receiver did not start within 10 s")
        if self._error is not None:
            raise RuntimeError("receiver failed to start") from self._error
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Drain and stop (the same path as SIGTERM); returns when the server has stopped. A
        second call (a test's teardown after the test stopped it) does nothing."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: stopped already
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def started(port: int) -> None:
                self.port = port
                self._ready.set()

            await serve(
                self.receiver,
                host=self.host,
                port=0,
                drain_timeout=self._drain_timeout,
                stop=self._stop,
                started=started,
                on_shutdown=self._on_shutdown,
                header_timeout=self._header_timeout,
                max_connections=self._max_connections,
            )

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            self._ready.set()
