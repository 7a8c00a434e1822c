"""Reading a request body under a size limit, chunked or not, without reading past the limit."""

from __future__ import annotations

from aiohttp import web

from .errors import BodyTooLarge


async def read_body(request: web.BaseRequest, max_bytes: int) -> bytes:
    """The whole body as bytes, or BodyTooLarge as soon as it is known to exceed `max_bytes`.

    A declared Content-Length over the limit is refused before reading anything; a chunked body is
    refused at the first chunk that crosses the limit. The caller should close the connection then
    (the rest of the body is never read).
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
        chunks.append(chunk)
    if len(chunks) == 1:
        return chunks[0]
    # join() then drop the pieces: peak memory is twice the body, for a moment.
    body = b"".join(chunks)
    chunks.clear()
    return body
