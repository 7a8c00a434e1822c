"""Async uploads over the synchronous writer: bounded concurrency, retries within a budget."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ..receiver.retry import RetryPolicy
from .core import ObjectWrite
from .errors import Failure, classify
from .metrics import TargetMetrics
from .writer import ObjectWriter


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
    """At most `max_concurrency` PUTs at once (one thread each); transient failures are retried
    with backoff until the policy's budget runs out."""

    def __init__(
        self,
        writer: ObjectWriter,
        *,
        max_concurrency: int,
        policy: RetryPolicy,
        metrics: TargetMetrics,
    ) -> None:
        self._writer = writer
        self._policy = policy
        self._metrics = metrics
        self._slots = asyncio.Semaphore(max_concurrency)
        self._executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="oss")

    async def store(self, write: ObjectWrite) -> Stored | NotStored:
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._slots:
                    self._metrics.uploads_in_flight.inc()
                    try:
                        result = await loop.run_in_executor(
                            self._executor, self._writer.put, write.key, write.body, write.headers
                        )
                    finally:
                        self._metrics.uploads_in_flight.dec()
            except Exception as error:
                failure = classify(error)
                self._metrics.attempts.labels(failure.reason).inc()
                elapsed = time.monotonic() - started
                delay = self._policy.next_delay(attempt - 1, elapsed) if failure.retryable else None
                if delay is None:
                    return NotStored(failure, attempt, elapsed)
                await asyncio.sleep(delay)
                continue
            self._metrics.attempts.labels("ok").inc()
            return Stored(result.etag, result.request_id, attempt, time.monotonic() - started)

    async def close(self) -> None:
        """Wait for PUTs already running (a drained request may have left one), then close."""
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self._writer.close()
