"""Serving a Receiver: the process entry point (signals, draining, exit code) and a thread runner.

Shutdown order on SIGTERM/SIGINT: readiness and new POSTs answer 503, the listening socket closes
(no new connections), requests in flight get up to `drain_timeout` seconds to finish, then the
`on_shutdown` callbacks run (close pools) and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from aiohttp import web

from .app import Receiver
from .logs import configure_logging, log_fields
from .settings import EnvReader, load_or_exit

ShutdownHook = Callable[[], Awaitable[None]]
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
) -> None:
    """Serve until `stop` is set, then drain. `started(port)` gets the bound port."""
    runner = web.AppRunner(
        receiver.app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=drain_timeout,
        # Never read (and wait for) the unread rest of a refused body; the connection is closed.
        lingering_time=0,
    )
    await runner.setup()
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
        await runner.cleanup()
        for hook in on_shutdown or ():
            await hook()
        log_fields(receiver.logger, logging.INFO, "stopped")


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
) -> int:
    """Block serving until SIGTERM or SIGINT; returns the exit code (0 after a clean drain)."""

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
        )

    asyncio.run(main())
    return 0


class _Closable(Protocol):
    async def close(self) -> None: ...


def main(
    program: str,
    read_settings: Callable[[EnvReader], S],
    build: Callable[[S], tuple[Receiver, _Closable]],
) -> int:
    """A runtime's whole `__main__`: read its settings (one line and exit 2 when invalid), set up
    JSON logs, build the receiver and its outbound client, serve until SIGTERM, close the client.
    `settings.server` must be the ServerSettings part."""
    settings = load_or_exit(read_settings, program=program)
    configure_logging(settings.server.log_level)
    receiver, client = build(settings)
    return run(
        receiver,
        port=settings.server.port,
        drain_timeout=settings.server.drain_timeout_seconds,
        on_shutdown=[client.close],
    )


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
    ) -> None:
        self.receiver = receiver
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
        """Drain and stop (the same path as SIGTERM); returns when the server has stopped."""
        if self._loop is not None and self._stop is not None:
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
            )

        try:
            asyncio.run(main())
        except BaseException as error:
            self._error = error
            self._ready.set()
