"""The only code that talks to OSS: `await ObjectWriter.put(key, body, headers) -> PutResult`.

`OssWriter` uses Alibaba's official asyncio client (`alibabacloud_oss_v2.aio.AsyncClient`, aiohttp
transport) on the target's own event loop: no thread pool, one aiohttp connection pool sized to the
concurrency. The SDK signs (V4 when OSS_REGION is set, as Alibaba recommends; V1 otherwise) with
credentials from `RefreshingCredentials`, and raises its own exceptions (see errors.classify).

Integrity: the body's CRC-64/ECMA-182 is computed with `fastcrc` (0.03 ms per MiB, measured; the
SDK's own upload check uses crcmod, ~2.7 ms per MiB holding the loop) and compared with the
`x-oss-hash-crc64ecma` OSS answers, as the SDK does with its check enabled; a mismatch raises the
SDK's `InconsistentError`.

Large bodies (over `UPLOAD_SLICE_BYTES`) go to the SDK as an async iterable of memoryview slices
with the Content-Length set, and the CRC is computed slice by slice as aiohttp sends them. Handed
one 8 MiB bytes object, aiohttp (Python 3.11, the images') joins it with the request head and
asyncio copies whatever the socket did not take at once into the transport's buffer: two more
copies of the body, made on the event loop in one go (a quarter of the loop's time under 8 MiB
events, profiled). Slices keep both copies to one slice at a time and no step holds the loop long.
A body still arriving (an ArrivingBody, see service.py's head start) is sent the same way, each
slice once it has arrived; if the body aborts, so does the PUT, before its Content-Length is
reached, and OSS stores nothing.
The SDK's own retries are off: the uploader retries with backoff inside a budget.
"""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import alibabacloud_oss_v2 as oss
from alibabacloud_oss_v2.aio import AsyncClient
from alibabacloud_oss_v2.aio.transport import AioHttpClient
from alibabacloud_oss_v2.exceptions import InconsistentError
from fastcrc import crc64

from ..receiver.body import ArrivingBody
from .credentials import RefreshingCredentials
from .settings import TargetSettings

# CRC-64/XZ in the RevEng catalogue is the reflected ECMA-182 polynomial with init and xorout all
# ones: what OSS reports as x-oss-hash-crc64ecma (checked against crcmod and oss2 in the tests).
crc64_ecma = crc64.xz

# Bodies up to this size go to the SDK whole; larger ones as slices of this size (aiohttp writes
# each and waits for the socket to drain before the next).
UPLOAD_SLICE_BYTES = 256 * 1024

# An arriving body (head start) is sent in larger slices: on loopback, where the hops cost CPU and
# not wire time, 256 KiB slices made an 8 MiB event 9 % slower than without the head start, 1 MiB
# slices 8 % faster (bench/README.md).
ARRIVING_SLICE_MAX_BYTES = 1024 * 1024
Body = bytes | bytearray | memoryview | ArrivingBody


@dataclass(frozen=True)
class PutResult:
    etag: str
    request_id: str


class ObjectWriter(Protocol):
    """Stores one object; raises the OSS SDK's exceptions (see errors.classify) on failure."""

    async def put(self, key: str, body: Body, headers: dict[str, str]) -> PutResult: ...

    async def close(self) -> None: ...


def proxy_for(endpoint: str) -> str | None:
    """The environment's proxy for `endpoint` (HTTPS_PROXY, NO_PROXY, ...), resolved once."""
    parts = urllib.parse.urlsplit(endpoint)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def make_config(settings: TargetSettings, credentials: RefreshingCredentials) -> oss.config.Config:
    """The SDK configuration: endpoint as given (an IP endpoint means path-style addressing, a
    host name virtual-hosted, as the SDK decides), V4 with a region else V1, no SDK retries, no
    SDK CRC check (ours is cheaper, same comparison)."""
    config = oss.config.Config(
        region=settings.region or "",
        endpoint=settings.endpoint,
        credentials_provider=credentials,
        signature_version="v4" if settings.region else "v1",
        retry_max_attempts=1,
        disable_upload_crc64_check=True,
        connect_timeout=settings.timeout_seconds,
        readwrite_timeout=settings.timeout_seconds,
    )
    return config


class OssWriter:
    """Puts objects through `AsyncClient`. The aiohttp session is made on first use, inside the
    running loop (the writer is built before the loop starts), and closed by `close()`."""

    def __init__(self, settings: TargetSettings, credentials: RefreshingCredentials) -> None:
        self._settings = settings
        self._credentials = credentials
        self._config = make_config(settings, credentials)
        self._proxy = proxy_for(settings.endpoint)
        self._session: aiohttp.ClientSession | None = None
        self._client: AsyncClient | None = None

    def _open(self) -> AsyncClient:
        connector = aiohttp.TCPConnector(
            limit=self._settings.max_concurrency, limit_per_host=self._settings.max_concurrency
        )
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        transport = AioHttpClient(
            session=self._session,
            connect_timeout=self._settings.timeout_seconds,
            readwrite_timeout=self._settings.timeout_seconds,
            proxy_host=self._proxy,
        )
        self._client = AsyncClient(self._config, http_client=transport)
        return self._client

    async def put(self, key: str, body: Body, headers: dict[str, str]) -> PutResult:
        """PUT `body` (bytes-like, or an ArrivingBody: sent as it arrives) at `key`; `headers` are
        sent as given. Raises the SDK's exceptions, its InconsistentError when OSS's CRC-64
        differs from the body's, and BodyAborted when an arriving body does not arrive whole."""
        client = self._client or self._open()
        if isinstance(body, ArrivingBody) and body.complete:
            body = body.buffer
        size = len(body) if not isinstance(body, memoryview) else body.nbytes
        request = oss.PutObjectRequest(bucket=self._settings.bucket, key=key)
        request.headers = dict(headers)
        if size <= UPLOAD_SLICE_BYTES and not isinstance(body, ArrivingBody):
            request.body = body
            result = await client.put_object(request)
            sent, expected = size, crc64_ecma(body)
        else:
            slices = _CrcSlices(body, size)
            request.body = slices.iterate()
            request.content_length = size
            result = await client.put_object(request)
            sent, expected = slices.hashed, slices.crc
        if sent != size:
            # OSS answered before the whole body went out: nothing here says what it stored.
            raise InconsistentError(client_crc="incomplete", server_crc=result.hash_crc64 or "")
        answered = result.hash_crc64
        if answered is not None and answered != str(expected):
            raise InconsistentError(client_crc=str(expected), server_crc=answered)
        return PutResult(etag=(result.etag or "").strip('"'), request_id=result.request_id or "")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = self._client = None


class _CrcSlices:
    """The body as memoryview slices of UPLOAD_SLICE_BYTES for aiohttp to send one by one (an
    ArrivingBody's as they arrive), with the CRC-64 of what was handed over kept as it goes
    (`crc` is the whole body's once `hashed` equals its size)."""

    def __init__(self, body: Body, size: int) -> None:
        self._body = body
        self._size = size
        self.hashed = 0
        self.crc: int | None = None

    async def iterate(self) -> AsyncIterator[memoryview]:
        if isinstance(self._body, ArrivingBody):
            pieces = self._body.slices(arriving_slice_bytes(self._size))
        else:
            pieces = _sliced(self._body, self._size)
        async for piece in pieces:
            self.crc = crc64_ecma(piece, self.crc)
            self.hashed += len(piece)
            yield piece


def arriving_slice_bytes(size: int) -> int:
    """How much of an arriving body to wait for before sending it on: an eighth of the body,
    between UPLOAD_SLICE_BYTES and ARRIVING_SLICE_MAX_BYTES. Each slice is a wake-up of the upload
    and a write; an eighth still lets the upload start with the first eighth of the body."""
    return min(ARRIVING_SLICE_MAX_BYTES, max(UPLOAD_SLICE_BYTES, size // 8))


async def _sliced(body: bytes | bytearray | memoryview, size: int) -> AsyncIterator[memoryview]:
    # Not released explicitly: the transport may still hold the last slice when this ends.
    view = memoryview(body).cast("B")
    for start in range(0, size, UPLOAD_SLICE_BYTES):
        yield view[start : start + UPLOAD_SLICE_BYTES]
