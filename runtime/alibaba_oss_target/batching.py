"""Rolled objects: many events per OSS object (NDJSON, optionally compressed), each event
acknowledged only once the object holding it is stored.

Events are grouped by their key without the id (`core.plan_lines`); each group has at most one
open object. A line joins its group's open object (opening one if there is none), and the object
rolls (is closed and uploaded) when any limit is reached:

- `events`: it holds `max_events` lines;
- `bytes`: its uncompressed NDJSON reaches `max_bytes` (a line that would take it past the limit
  rolls the object first, so objects stay under it unless one line alone is larger);
- `time`: `max_seconds` have passed since its first line;
- `shutdown`: the receiver started draining (SIGTERM), so nothing waits for a timer.

Key: group + `<first event time, UTC, %Y%m%dT%H%M%S.%fZ>-<16 random hex digits>` + `.ndjson`
(`.gz` / `.zst` when compressed): unique, and sorted by time within a group in a listing. An open
object holds its lines as they are (each belongs to a request still waiting, whose body keeps its
reservation in the receiver's byte budget); it is compressed when it rolls, in a worker thread, at
most COMPRESSING at once, so the number of open groups never multiplies compressor state.

Every line's waiter gets the same outcome: the stored object (key, size, etag) and its 1-based
line number, or the failure after the uploader's retries, for every line of that object (none of
them counts as stored: the sender retries, and events already stored in another object may be
stored again; the event id is the dedupe key).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime

import zstandard

from ..receiver import log_fields
from .core import NDJSON_CONTENT_TYPE, Line, ObjectWrite
from .key_rules import ROLLED_NAME_BYTES
from .metrics import TargetMetrics
from .settings import BatchLimits
from .uploader import NotStored, Stored, Uploader

EXTENSIONS = {"none": ".ndjson", "gzip": ".ndjson.gz", "zstd": ".ndjson.zst"}
# Content-Encoding tokens: IANA HTTP Content Coding Registry (`gzip`, RFC 9110; `zstd`, RFC 8878).
CONTENT_ENCODINGS = {"gzip": "gzip", "zstd": "zstd"}
GZIP_LEVEL = 6  # zlib's default: most of level 9's ratio at a fraction of its CPU
ZSTD_LEVEL = 3  # zstd's default
COMPRESSING = 2  # objects compressed at once (the pods' CPU limit is about one core)


def object_time(first: datetime) -> str:
    """`first` (UTC) as `YYYYmmddTHHMMSS.ffffffZ`, the year always four digits (strftime's `%Y`
    gives `1` for year 1 on glibc, which would break the sort order)."""
    return f"{first.year:04d}{first:%m%dT%H%M%S.%f}Z"


@dataclass(frozen=True)
class Placed:
    """Where an event ended up: the object as written, its line (1-based) and the upload's
    result (Stored or NotStored, shared by every line of the object)."""

    write: ObjectWrite
    line: int
    result: Stored | NotStored


def compress(body: bytes, compression: str) -> bytes:
    """`body` as stored: gzip (RFC 1952; mtime 0, so equal bodies give equal objects), zstd
    (RFC 8878, one frame with its content size) or unchanged (`none`)."""
    if compression == "gzip":
        return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(body)
    return body


@dataclass
class _Open:
    group: str
    key: str
    opened: float
    done: asyncio.Future[tuple[ObjectWrite, Stored | NotStored]]
    chunks: list[bytes] = field(default_factory=list)
    lines: int = 0
    raw_bytes: int = 0
    timer: asyncio.TimerHandle | None = None


class Batcher:
    """Collects lines into open objects per group and uploads them when they roll.

    `place(line)` (no await: a request's lines are placed together) returns an awaitable of
    the event's Placed outcome. `roll_all()` rolls every open object (the receiver calls it when
    draining starts); after it, each new line rolls its object at once.
    """

    def __init__(
        self,
        uploader: Uploader,
        metrics: TargetMetrics,
        limits: BatchLimits,
        *,
        logger: logging.Logger,
    ) -> None:
        if limits.max_events < 1:
            raise ValueError("max_events must be at least 1 with batching on")
        self._uploader = uploader
        self._metrics = metrics
        self._limits = limits
        self._logger = logger
        self._open: dict[str, _Open] = {}
        self._uploads: set[asyncio.Task] = set()
        self._closing = False
        self._compressing = asyncio.Semaphore(COMPRESSING)

    @property
    def open_objects(self) -> int:
        return len(self._open)

    @property
    def name_bytes(self) -> int:
        """The bytes an object's name adds to its group key (key_rules.ROLLED_NAME_BYTES)."""
        return ROLLED_NAME_BYTES[self._limits.compression]

    def place(self, line: Line) -> asyncio.Future[Placed]:
        """Add `line` to its group's open object; the future resolves once that object is stored
        (or has failed for good)."""
        current = self._open.get(line.group)
        if current is not None and current.raw_bytes + len(line.data) > self._limits.max_bytes:
            self._roll(current, "bytes")
            current = None
        if current is None:
            current = self._start(line.group, line.time)
        current.chunks.append(line.data)
        current.lines += 1
        current.raw_bytes += len(line.data)
        number = current.lines
        placed = asyncio.get_running_loop().create_future()

        def resolve(done: asyncio.Future[tuple[ObjectWrite, Stored | NotStored]]) -> None:
            if placed.done():
                return
            if done.cancelled():
                placed.cancel()
            else:
                write, result = done.result()
                placed.set_result(Placed(write, number, result))

        current.done.add_done_callback(resolve)
        if self._closing:
            self._roll(current, "shutdown")
        elif current.lines >= self._limits.max_events:
            self._roll(current, "events")
        elif current.raw_bytes >= self._limits.max_bytes:
            self._roll(current, "bytes")
        return placed

    def roll_all(self, reason: str = "shutdown") -> None:
        """Roll every open object now; with `shutdown`, later lines roll their objects at once."""
        if reason == "shutdown":
            self._closing = True
        for current in list(self._open.values()):
            self._roll(current, reason)

    async def wait_uploads(self) -> None:
        """Wait for the uploads already started (tests, benchmarks)."""
        while self._uploads:
            await asyncio.gather(*list(self._uploads), return_exceptions=True)

    def _start(self, group: str, first: datetime) -> _Open:
        loop = asyncio.get_running_loop()
        name = f"{object_time(first)}-{secrets.token_hex(8)}"
        current = _Open(
            group=group,
            key=group + name + EXTENSIONS[self._limits.compression],
            opened=time.monotonic(),
            done=loop.create_future(),
        )
        current.timer = loop.call_later(self._limits.max_seconds, self._expire, current)
        self._open[group] = current
        return current

    def _expire(self, current: _Open) -> None:
        if self._open.get(current.group) is current:
            self._roll(current, "time")

    def _roll(self, current: _Open, reason: str) -> None:
        if self._open.get(current.group) is current:
            del self._open[current.group]
        if current.timer is not None:
            current.timer.cancel()
        self._metrics.flushes.labels(reason).inc()
        task = asyncio.get_running_loop().create_task(self._upload(current, reason))
        self._uploads.add(task)
        task.add_done_callback(self._uploads.discard)

    async def _upload(self, current: _Open, reason: str) -> None:
        result: Stored | NotStored
        try:
            raw = b"".join(current.chunks)
            current.chunks.clear()
            compression = self._limits.compression
            headers = {"Content-Type": NDJSON_CONTENT_TYPE}
            if compression in CONTENT_ENCODINGS:
                headers["Content-Encoding"] = CONTENT_ENCODINGS[compression]
                # zlib and zstd release the GIL: a thread keeps the loop (and /healthz) free,
                # and at most COMPRESSING at once bound the compressors' memory and CPU.
                async with self._compressing:
                    body = await asyncio.to_thread(compress, raw, compression)
            else:
                body = raw
            del raw
            write = ObjectWrite(key=current.key, body=body, headers=headers)
            result = await self._uploader.store(write)
        except BaseException:
            # Cancelled at shutdown: every waiter was answered 503 by the receiver already.
            if not current.done.done():
                current.done.cancel()
            raise
        if isinstance(result, Stored):
            self._metrics.objects_written.inc()
            self._metrics.bytes_stored.inc(write.size)
            self._metrics.events_per_object.observe(current.lines)
            self._metrics.object_bytes_raw.inc(current.raw_bytes)
            self._metrics.object_bytes_stored.inc(write.size)
        log_fields(
            self._logger,
            logging.INFO if isinstance(result, Stored) else logging.WARNING,
            "object stored" if isinstance(result, Stored) else "object not stored",
            key=write.key,
            events=current.lines,
            raw_bytes=current.raw_bytes,
            size=write.size,
            reason=reason,
            attempts=result.attempts,
            open_ms=round((time.monotonic() - current.opened) * 1000, 3),
        )
        current.done.set_result((write, result))
