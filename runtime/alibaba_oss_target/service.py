"""The target's event handler: plan every write, upload, answer with response events.

Statuses: 200 when every event is stored; 400 when an id cannot be a key (nothing written);
503 + Retry-After when an upload still failed transiently after retries (the broker redelivers;
storing is idempotent); 502 when OSS refused for a client reason (credentials, bucket).
A batch answers with a batch of per-event responses, so the sender sees which ones failed.

With rolled objects (a `Batcher`), each event becomes a line of an NDJSON object and the request
is answered only once every object holding its events is stored: 200 with the key, etag and the
event's line; 503 + Retry-After (or 502) when that object's upload failed, for every event in it.

Head start (one object per event, STORE=data): a binary-mode event of at least
OSS_HEAD_START_BYTES with a Content-Length is uploaded while its body arrives (the receiver's
HeadStart), so the two hops, sender to target and target to OSS, overlap instead of following
one another. The PUT carries the body's Content-Length and sends only bytes that have arrived:
if the body never arrives whole, the PUT is cut short and OSS stores nothing. The answer still
waits for the whole body and OSS's CRC-64; a failed attempt is retried as any other (re-sent
from the buffer the body arrives in), the retry budget counting from the moment the body is
complete. At most half of OSS_MAX_CONCURRENCY uploads run ahead of their bodies at once (none
with one), so senders that trickle cannot hold every connection to OSS.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

from aiohttp import web
from cloudevents.core.v1.event import CloudEvent

from ..receiver import (
    ArrivingBody,
    Delivery,
    InvalidEvent,
    batch_response,
    binary_response,
    log_fields,
)
from ..receiver.events import ReceivedEvent
from ..receiver.responses import rejection_response
from .batching import Batcher, Placed
from .core import (
    PLAIN_ID,
    Line,
    ObjectWrite,
    error_event,
    plan_lines,
    plan_write,
    plan_writes,
    success_event,
)
from .errors import Failure
from .metrics import TargetMetrics
from .templates import KeyTemplate
from .uploader import NotStored, Stored, Uploader

RETRY_AFTER_SECONDS = "1"


@dataclass(frozen=True)
class Outcome:
    status: int
    reply: CloudEvent


class OssTarget:
    def __init__(
        self,
        uploader: Uploader,
        metrics: TargetMetrics,
        *,
        bucket: str,
        prefix: str,
        store: str,
        source: str,
        logger: logging.Logger,
        template: KeyTemplate = PLAIN_ID,
        batcher: Batcher | None = None,
        head_starts: int = 0,
        head_start_bytes: int = 0,
    ) -> None:
        """`head_starts`: how many uploads may run ahead of their bodies at once, for bodies of
        at least `head_start_bytes` (either 0: none)."""
        self._uploader = uploader
        self._metrics = metrics
        self._bucket = bucket
        self._prefix = prefix
        self._store = store
        self._source = source
        self._logger = logger
        self._template = template
        self._batcher = batcher
        ahead = batcher is None and store == "data" and head_start_bytes > 0
        self._head_starts = head_starts if ahead else 0
        self._head_start_bytes = head_start_bytes
        self._running_ahead = 0

    def head_start(
        self, event: ReceivedEvent, body: ArrivingBody
    ) -> asyncio.Future[Outcome] | None:
        """The receiver's HeadStart: the event's upload, begun while its body arrives, or None
        (a small body, all head starts taken, or an event that will be refused: it is refused
        once its body is read, as without a head start)."""
        if len(body) < self._head_start_bytes or self._running_ahead >= self._head_starts:
            return None
        try:
            write = plan_write(
                event, prefix=self._prefix, store=self._store, template=self._template
            )
        except InvalidEvent:
            return None
        self._running_ahead += 1
        task = asyncio.ensure_future(self._store_one(event, dataclasses.replace(write, body=body)))
        task.add_done_callback(self._finished_ahead)
        return task

    def _finished_ahead(self, task: asyncio.Future[Outcome]) -> None:
        self._running_ahead -= 1

    async def __call__(self, delivery: Delivery) -> web.StreamResponse:
        if delivery.head_start is not None:
            # The key was planned from the headers when the upload began (a template's time
            # included); the body it sent is the one the receiver read and checked.
            return self._answer(delivery, [await delivery.head_start])
        if self._batcher is not None:
            return await self._roll_in(delivery, self._batcher)
        try:
            writes = plan_writes(
                delivery.events,
                prefix=self._prefix,
                store=self._store,
                batch=delivery.mode == "batch",
                template=self._template,
            )
        except InvalidEvent as error:
            return self._reject(error)
        pairs = zip(delivery.events, writes, strict=True)
        outcomes = await asyncio.gather(*(self._store_one(event, write) for event, write in pairs))
        return self._answer(delivery, outcomes)

    async def _roll_in(self, delivery: Delivery, batcher: Batcher) -> web.StreamResponse:
        """Every event as a line of its group's open object; answer once they are all stored."""
        try:
            entries = plan_lines(
                delivery.events,
                prefix=self._prefix,
                template=self._template,
                batch=delivery.mode == "batch",
                name_bytes=batcher.name_bytes,
            )
        except InvalidEvent as error:
            return self._reject(error)
        # Placed together, without an await in between, so they share objects where they can.
        waiting = {
            index: batcher.place(entry)
            for index, entry in enumerate(entries)
            if isinstance(entry, Line)
        }
        placed = dict(zip(waiting, await asyncio.gather(*waiting.values()), strict=True))
        outcomes = []
        for index, (event, entry) in enumerate(zip(delivery.events, entries, strict=True)):
            outcomes.append(self._placed(event, placed[entry if isinstance(entry, int) else index]))
        return self._answer(delivery, outcomes)

    def _placed(self, event: ReceivedEvent, placed: Placed) -> Outcome:
        result = placed.result
        if isinstance(result, Stored):
            self._metrics.stored.inc()
            reply = success_event(
                event,
                source=self._source,
                bucket=self._bucket,
                write=placed.write,
                etag=result.etag,
                line=placed.line,
            )
            return Outcome(200, reply)
        failure = result.failure
        self._metrics.failed.labels(failure.reason).inc()
        reply = error_event(
            event, source=self._source, bucket=self._bucket, key=placed.write.key, failure=failure
        )
        return Outcome(503 if failure.retryable else 502, reply)

    def _answer(self, delivery: Delivery, outcomes: list[Outcome]) -> web.StreamResponse:
        status = _overall_status([outcome.status for outcome in outcomes])
        headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
        if delivery.mode == "batch":
            return batch_response([o.reply for o in outcomes], status=status, headers=headers)
        return binary_response(outcomes[0].reply, status=status, headers=headers)

    def _reject(self, error: InvalidEvent) -> web.Response:
        """Nothing is written when any event of the request cannot become an object."""
        self._metrics.failed.labels(error.code).inc()
        log_fields(
            self._logger,
            logging.WARNING,
            "event rejected",
            status=400,
            error=error.code,
            reason=error.message,
            index=error.index,
        )
        return rejection_response(error)

    async def _store_one(self, event: ReceivedEvent, write: ObjectWrite) -> Outcome:
        result = await self._uploader.store(write)
        if isinstance(result, Stored):
            self._metrics.stored.inc()
            self._metrics.bytes_stored.inc(write.size)
            self._metrics.upload_seconds.labels("stored").observe(result.seconds)
            self._log(event, write, 200, result.seconds, result.attempts, etag=result.etag)
            reply = success_event(
                event, source=self._source, bucket=self._bucket, write=write, etag=result.etag
            )
            return Outcome(200, reply)
        assert isinstance(result, NotStored)
        failure: Failure = result.failure
        status = 503 if failure.retryable else 502
        self._metrics.failed.labels(failure.reason).inc()
        self._metrics.upload_seconds.labels("failed").observe(result.seconds)
        self._log(
            event,
            write,
            status,
            result.seconds,
            result.attempts,
            reason=failure.reason,
            code=failure.code,
            oss_status=failure.status,
            request_id=failure.request_id,
        )
        reply = error_event(
            event, source=self._source, bucket=self._bucket, key=write.key, failure=failure
        )
        return Outcome(status, reply)

    def _log(
        self,
        event: ReceivedEvent,
        write: ObjectWrite,
        status: int,
        seconds: float,
        attempts: int,
        **extra: object,
    ) -> None:
        log_fields(
            self._logger,
            logging.INFO if status == 200 else logging.WARNING,
            "event stored" if status == 200 else "event not stored",
            id=event.id,
            type=event.type,
            key=write.key,
            status=status,
            size=write.size,
            attempts=attempts,
            latency_ms=round(seconds * 1000, 3),
            **{name: value for name, value in extra.items() if value not in (None, "")},
        )


def _overall_status(statuses: list[int]) -> int:
    """200 if all stored; else 503 if anything may succeed on redelivery; else 502."""
    if all(status == 200 for status in statuses):
        return 200
    if any(status == 503 for status in statuses):
        return 503
    return 502
