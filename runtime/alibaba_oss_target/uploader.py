"""Uploads on the event loop: bounded concurrency, retries within a budget, auth health reported."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass

from runtime.alibaba_oss_target.core import ObjectWrite
from runtime.alibaba_oss_target.credentials import AUTH_ERROR_CODES, RefreshingCredentials
from runtime.alibaba_oss_target.errors import Failure, classify
from runtime.alibaba_oss_target.metrics import TargetMetrics
from runtime.alibaba_oss_target.writer import ObjectWriter
from runtime.receiver.retry import RetryPolicy


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
        self._slots = asyncio.Semaphore(max_concurrency)

    async def store(self, write: ObjectWrite) -> Stored | NotStored:
        started = time.monotonic()
        attempt = 0
        retried_refusal = False
        while True:
            attempt += 1
            generation = self._credentials.generation if self._credentials is not None else 0
            try:
                async with self._slots:
                    self._metrics.uploads_in_flight.inc()
                    try:
                        result = await self._writer.put(write.key, write.body, write.headers)
                    finally:
                        self._metrics.uploads_in_flight.dec()
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
                        return NotStored(failure, attempt, time.monotonic() - started)
                elapsed = time.monotonic() - started
                delay = self._policy.next_delay(attempt - 1, elapsed) if failure.retryable else None
                if delay is None:
                    return NotStored(failure, attempt, elapsed)
                await asyncio.sleep(delay)
                continue
            self._metrics.attempts.labels("ok").inc()
            if self._credentials is not None:
                self._credentials.succeeded()
            return Stored(result.etag, result.request_id, attempt, time.monotonic() - started)

    async def close(self) -> None:
        """Close the writer's connections (the server has drained its requests by then)."""
        await self._writer.close()
