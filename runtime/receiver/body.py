"""Reading a request body under a size limit, chunked or not, without reading past the limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from runtime.receiver.errors import BodyTooLarge


async def read_body(
    request: web.BaseRequest,
    max_bytes: int,
    reserve: Callable[[int], Awaitable[None]] | None = None,
) -> bytes:
    """The whole body as bytes, or BodyTooLarge as soon as it is known to exceed `max_bytes`.

    A declared Content-Length over the limit is refused before reading anything; a chunked body is
    refused at the first chunk that crosses the limit. The caller should close the connection then
    (the rest of the body is never read). `reserve(total)`, when given, is awaited before each
    chunk is kept, with the bytes read so far (a chunked body's memory budget grows with it).
    """
    declared = request.content_length
    if declared is not None and declared > max_bytes:
        raise BodyTooLarge(f"body of {declared} bytes exceeds the limit of {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    stream = request.content
    while True:
        chunk = await stream.readany()
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise BodyTooLarge(f"body exceeds the limit of {max_bytes} bytes")
        if reserve is not None:
            await reserve(total)
        chunks.append(chunk)
    if len(chunks) == 1:
        return chunks[0]
    # join() then drop the pieces: peak memory is twice the body, for a moment.
    body = b"".join(chunks)
    chunks.clear()
    return body
