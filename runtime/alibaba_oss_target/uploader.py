"""Uploads on the event loop: bounded concurrency, retries within a budget, auth health reported.

Time bounds: an event waits at most QUEUE_BUDGET_FACTOR x the retry budget for its first upload
slot (then: not stored, 503, the sender redelivers); its retry budget starts when its first attempt
starts (time queued behind the other events of a large batch is not spent from it), or, for a body
still arriving (a head start), once the whole body is there (the time a sender takes to send is
not spent from it either), and retries take free slots before first attempts, so an event that
has started finishes first. An event is therefore answered within (QUEUE_BUDGET_FACTOR + 1) x
budget + one attempt's timeout after its body is complete.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
import time
from dataclasses import dataclass

from ..receiver.body import ArrivingBody
from ..receiver.retry import RetryPolicy
from .core import ObjectWrite
from .credentials import AUTH_ERROR_CODES, RefreshingCredentials
from .errors import Failure, classify
from .metrics import TargetMetrics
from .writer import ObjectWriter

# How long an event may wait for its first upload slot, in retry budgets.
QUEUE_BUDGET_FACTOR = 3


class PrioritySlots:
    """`limit` slots; waiting retries get a freed slot before waiting first attempts, each kind
    first come, first served. `acquire(retry)` / `release()`."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def try_acquire(self) -> bool:
        """Take a slot now if one is free and nobody waits."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def acquire(self, retry: bool) -> None:
        if self.try_acquire():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (0 if retry else 1, next(self._order), waiter))
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted as we gave up: pass it on
            else:
                waiter.cancel()  # skipped when popped
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, waiter = heapq.heappop(self._waiters)
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


@dataclass(frozen=True)
class Stored:
    etag: str
    request_id: str
    attempts: int
    seconds: float


@dataclass(frozen=True)
class NotStored:
    failure: Failure
    attempts: int
    seconds: float


class Uploader:
    """At most `max_concurrency` PUTs at once; transient failures are retried with backoff until
    the policy's budget runs out. Every OSS answer about the credentials goes to `credentials`
    (when given), which decides readiness; a refusal of credentials that were replaced meanwhile
    is tried once more with the new ones, and a refusal that is the pod's state (expired, clock
    skew, not ready) is retryable (503) rather than the event's fault (502)."""

    def __init__(
        self,
        writer: ObjectWriter,
        *,
        max_concurrency: int,
        policy: RetryPolicy,
        metrics: TargetMetrics,
        credentials: RefreshingCredentials | None = None,
    ) -> None:
        self._writer = writer
        self._policy = policy
        self._metrics = metrics
        self._credentials = credentials
        self._slots = PrioritySlots(max_concurrency)

    async def store(self, write: ObjectWrite) -> Stored | NotStored:
        queued = time.monotonic()
        try:
            if not self._slots.try_acquire():
                await asyncio.wait_for(
                    self._slots.acquire(retry=False), QUEUE_BUDGET_FACTOR * self._policy.budget
                )
        except asyncio.TimeoutError:
            failure = Failure(True, "queue-timeout", "UploadQueueTimeout")
            self._metrics.attempts.labels(failure.reason).inc()
            return NotStored(failure, 0, time.monotonic() - queued)
        started = time.monotonic()  # the retry budget counts from the first attempt
        attempt = 0
        retried_refusal = False
        while True:
            attempt += 1
            if attempt > 1:
                await self._slots.acquire(retry=True)
            generation = self._credentials.generation if self._credentials is not None else 0
            try:
                self._metrics.uploads_in_flight.inc()
                try:
                    result = await self._writer.put(write.key, write.body, write.headers)
                finally:
                    self._metrics.uploads_in_flight.dec()
                    self._slots.release()
            except Exception as error:
                failure = classify(error)
                self._metrics.attempts.labels(failure.reason).inc()
                if self._credentials is not None and failure.code in AUTH_ERROR_CODES:
                    fresh = await self._credentials.refused(failure.code, generation)
                    if fresh and not retried_refusal:
                        # Refused credentials that were replaced meanwhile (a rotation): once more
                        # with the new ones, at once and whatever the budget says.
                        retried_refusal = True
                        continue
                    if self._credentials.refusal_retryable(failure.code):
                        # Answered 503 at once: retrying here would only be refused again.
                        failure = dataclasses.replace(failure, retryable=True)
                        return NotStored(failure, attempt, time.monotonic() - queued)
                elapsed = time.monotonic() - _budget_start(write, started)
                delay = self._policy.next_delay(attempt - 1, elapsed) if failure.retryable else None
                if delay is None:
                    return NotStored(failure, attempt, time.monotonic() - queued)
                await asyncio.sleep(delay)
                continue
            self._metrics.attempts.labels("ok").inc()
            if self._credentials is not None:
                self._credentials.succeeded()
            return Stored(result.etag, result.request_id, attempt, time.monotonic() - queued)

    async def close(self) -> None:
        """Close the writer's connections (the server has drained its requests by then)."""
        await self._writer.close()


def _budget_start(write: ObjectWrite, first_attempt: float) -> float:
    """When the write's retry budget started: its first attempt, or, for a body still arriving,
    the moment it was complete (now, while it is not: nothing is spent yet)."""
    body = write.body
    if isinstance(body, ArrivingBody):
        if body.completed_at is None:
            return time.monotonic()
        return max(first_attempt, body.completed_at)
    return first_attempt
