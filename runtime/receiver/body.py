"""Reading a request body under a size limit, chunked or not, without reading past the limit.

One copy of each body: a body that arrives in one piece is that piece; otherwise the pieces
aiohttp's parser hands over are copied, as they arrive, into one buffer of the declared size,
and dropped. Collecting the pieces and joining them at the
end (`readany()` + `b"".join`) held every body twice for a moment and did the whole copy in one
go on the event loop; the profile of the OSS target under 8 MiB events had that join on top.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import StreamReader, web

from .errors import BodyTooLarge


async def read_body(
    request: web.BaseRequest,
    max_bytes: int,
    reserve: Callable[[int], Awaitable[None]] | None = None,
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

    The caller should close the connection after BodyTooLarge (the rest of the body is never read).
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    if declared is not None:
        return await _read_declared(request.content, declared)
    return await _read_chunked(request.content, max_bytes, reserve)


async def _read_declared(stream: StreamReader, size: int) -> bytes | bytearray:
    # readchunk() hands over the parser's pieces one by one (readany() joins whatever is
    # buffered, which is a copy of its own).
    piece, _ = await stream.readchunk()
    if len(piece) == size:
        return piece
    body = bytearray(size)
    filled = 0
    with memoryview(body) as view:
        while True:
            if not piece:
                if stream.at_eof():
                    break
                piece, _ = await stream.readchunk()
                continue  # the end of an HTTP chunk, not of the body
            end = filled + len(piece)
            if end > size:
                # aiohttp's parser stops at Content-Length; more would be a framing bug.
                raise BodyTooLarge(f"body exceeds its declared {size} bytes")
            view[filled:end] = piece
            filled = end
            piece, _ = await stream.readchunk()
    if filled != size:
        raise ConnectionResetError(f"the body ended after {filled} of its {size} bytes")
    return body


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
