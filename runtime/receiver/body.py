"""Reading a request body under a size limit, chunked or not, without reading past the limit.

One copy of each body: a body that arrives in one piece is that piece; otherwise the pieces
aiohttp's parser hands over are copied, as they arrive, into one buffer of the declared size,
and dropped. Collecting the pieces and joining them at the
end (`readany()` + `b"".join`) held every body twice for a moment and did the whole copy in one
go on the event loop; the profile of the OSS target under 8 MiB events had that join on top.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import StreamReader, web

from .errors import BodyTooLarge


class BodyAborted(Exception):
    """The body an `ArrivingBody` stands for will not arrive whole (the sender disconnected, broke
    the framing or missed the body deadline); `__cause__` says how."""


class ArrivingBody:
    """A body with a Content-Length while it is read: one buffer of that size (`buffer`), filled
    front to back, that consumers may send on while the rest is still arriving.

    `len()` is the declared size; `complete` says whether it has all arrived. `slices()` yields
    the body as it arrives; it raises BodyAborted once the body is known not to arrive whole (a
    consumer then abandons what it sent: an upload with its Content-Length cut short is
    never stored). The reader is `read_body(..., into=arriving)`.
    """

    def __init__(self, size: int) -> None:
        # Made on first use: a head start that is declined costs nothing.
        self._buffer: bytearray | None = None
        self._view: memoryview | None = None
        self.filled = 0
        # time.monotonic() when the last byte arrived (None until then).
        self.completed_at: float | None = None
        self._size = size
        self._error: BaseException | None = None
        # (bytes wanted, future): woken once that much has arrived, or the body aborts.
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def __len__(self) -> int:
        return self._size

    @property
    def buffer(self) -> bytearray:
        self._memory()
        assert self._buffer is not None
        return self._buffer

    def _memory(self) -> memoryview:
        if self._view is None:
            self._buffer = bytearray(self._size)
            self._view = memoryview(self._buffer)
        return self._view

    @property
    def complete(self) -> bool:
        return self.filled == self._size

    def append(self, piece: bytes | bytearray | memoryview) -> None:
        end = self.filled + len(piece)
        if end > self._size:
            raise BodyTooLarge(f"body exceeds its declared {self._size} bytes")
        self._memory()[self.filled : end] = piece
        self.filled = end
        if end == self._size:
            self.completed_at = time.monotonic()
        if self._waiters:
            self._wake(end)

    def abort(self, cause: BaseException) -> None:
        if self._error is None and not self.complete:
            self._error = cause
            self._wake(None)

    def _wake(self, filled: int | None) -> None:
        """Wake the waiters whose bytes have arrived (all of them when `filled` is None)."""
        waiting = []
        for wanted, waiter in self._waiters:
            if filled is None or wanted <= filled:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((wanted, waiter))
        self._waiters = waiting

    async def slices(self, max_bytes: int) -> AsyncIterator[memoryview]:
        """The body front to back as memoryview slices of at most `max_bytes`, each yielded once
        that many bytes (or the rest of the body) have arrived. Raises BodyAborted."""
        sent = 0
        view = self._memory()
        while sent < self._size:
            wanted = min(sent + max_bytes, self._size)
            while self.filled < wanted:
                if self._error is not None:
                    raise BodyAborted("the body did not arrive whole") from self._error
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append((wanted, waiter))
                await waiter
            yield view[sent:wanted]
            sent = wanted


async def read_body(
    request: web.BaseRequest,
    max_bytes: int,
    reserve: Callable[[int], Awaitable[None]] | None = None,
    into: ArrivingBody | None = None,
) -> bytes | bytearray:
    """The whole body, or BodyTooLarge as soon as it is known to exceed `max_bytes`.

    Returns the piece itself when the body arrived in one (small bodies: no copy at all), else a
    `bytearray` (bytes-like: `json.loads`, `hmac`, `==` with bytes, aiohttp and the OSS SDK take
    it as they take bytes; nothing downstream mutates it).

    - Content-Length over the limit: refused before anything is read.
    - Content-Length within it: read into one buffer of exactly that size, filled as the pieces
      arrive. A body that ends early (the sender closed the connection) raises aiohttp's
      `ContentLengthError` (an `HttpProcessingError`) or `ConnectionResetError`.
    - Chunked (no Content-Length): appended to a growing buffer, refused at the first piece that
      crosses the limit; `reserve(total)`, when given, is awaited before each piece is kept, with
      the bytes read so far (a chunked body's memory budget grows with it).

    - `into` (an ArrivingBody of the declared size): the body is read into its buffer, which is
      returned; whatever ends the read early (an error, the deadline's cancellation) aborts it.

    The caller should close the connection after BodyTooLarge (the rest of the body is never read).
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    if into is not None:
        if declared != len(into):
            raise ValueError("an ArrivingBody needs the request's Content-Length")
        try:
            return await _read_into(request.content, into)
        except BaseException as error:
            into.abort(error)
            raise
    if declared is not None:
        return await _read_declared(request.content, declared)
    return await _read_chunked(request.content, max_bytes, reserve)


async def _read_into(stream: StreamReader, arriving: ArrivingBody) -> bytearray:
    # An empty piece is the end of an HTTP chunk, not of the body, unless the stream is at EOF;
    # more than the declared size is refused by `append` (aiohttp's parser stops at
    # Content-Length, so that would be a framing bug).
    while True:
        piece, _ = await stream.readchunk()
        if piece:
            arriving.append(piece)
        elif stream.at_eof():
            break
    if not arriving.complete:
        raise ConnectionResetError(
            f"the body ended after {arriving.filled} of its {len(arriving)} bytes"
        )
    return arriving.buffer


async def _read_declared(stream: StreamReader, size: int) -> bytes | bytearray:
    # readchunk() hands over the parser's pieces one by one (readany() joins whatever is
    # buffered, which is a copy of its own).
    piece, _ = await stream.readchunk()
    if len(piece) == size:
        return piece
    arriving = ArrivingBody(size)
    arriving.append(piece)
    return await _read_into(stream, arriving)


async def _read_chunked(
    stream: StreamReader,
    max_bytes: int,
    reserve: Callable[[int], Awaitable[None]] | None,
) -> bytearray:
    body = bytearray()
    while True:
        piece, _ = await stream.readchunk()
        if not piece:
            if stream.at_eof():
                return body
            continue
        if len(body) + len(piece) > max_bytes:
            raise BodyTooLarge(f"body exceeds the limit of {max_bytes} bytes")
        if reserve is not None:
            await reserve(len(body) + len(piece))
        body += piece
