"""Forwarding one event to the sink in binary mode, with retries on 5xx, 429 and network errors.

Binary events go out with the `ce-*` headers exactly as received; structured and batch events are
turned into binary mode from the attributes as sent (the data bytes are never re-encoded).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import aiohttp

from ..receiver import ReceivedEvent, RetryPolicy

# CloudEvents HTTP binding 3.1.3.2: printable ASCII is sent as is, except space, '"' and '%'.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
USER_AGENT = "cloudevents-connectors-relay"


@dataclass(frozen=True)
class Forwarded:
    """The end of one event's delivery: accepted, or why not and whether a retry may help."""

    event_id: str
    accepted: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None

    @property
    def sink_down(self) -> bool:
        """Not accepted for a reason that may pass (5xx, 429, network): tell the sender to retry."""
        return not self.accepted and (self.status is None or retryable(self.status))


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def binary_headers(received: ReceivedEvent, request_headers) -> dict[str, str]:
    if received.mode == "binary":
        headers = {
            name: value for name, value in request_headers.items() if name.lower()[:3] == "ce-"
        }
    else:
        headers = {
            f"ce-{name}": quote(_text(value), safe=_HEADER_SAFE)
            for name, value in received.attributes.items()
            if name != "datacontenttype" and value is not None
        }
    if received.content_type:
        headers["Content-Type"] = received.content_type
    headers["User-Agent"] = USER_AGENT
    return headers


def _text(value: object) -> str:
    if isinstance(value, datetime):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Forwarder:
    """One aiohttp session to the sink, opened on first use and closed on shutdown."""

    def __init__(
        self,
        sink_url: str,
        *,
        timeout: float,
        policy: RetryPolicy,
        concurrency: int,
    ) -> None:
        self.sink_url = sink_url
        self._timeout = timeout
        self._policy = policy
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._concurrency),
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def forward(self, received: ReceivedEvent, headers: dict[str, str]) -> Forwarded:
        started = time.monotonic()
        deadline = started + self._policy.budget
        attempt, status, error, retry_after = 0, None, None, None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Forwarded(received.id, False, attempt, status, error or "out of time")
            attempt += 1
            retry_after = None
            try:
                async with self._client().post(
                    self.sink_url,
                    data=received.data,
                    headers=headers,
                    # aiohttp would label bytes application/octet-stream, which the sink reads as
                    # the event's datacontenttype; an event without one must stay without one.
                    skip_auto_headers=() if "Content-Type" in headers else ("Content-Type",),
                    timeout=aiohttp.ClientTimeout(total=min(self._timeout, remaining)),
                ) as response:
                    await response.read()
                    status = response.status
                    retry_after = _seconds(response.headers.get("Retry-After"))
                error = None if 200 <= status < 300 else f"HTTP {status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                # Keep the last status the sink did answer: an attempt cut short by the end of the
                # budget must not hide it from the sender.
                error = type(exc).__name__
            if error is None:
                return Forwarded(received.id, True, attempt, status)
            if status is not None and not retryable(status):
                return Forwarded(received.id, False, attempt, status, error)
            # The sink's Retry-After, when longer than our backoff, is honoured within the budget.
            delay = self._policy.next_delay(attempt - 1, time.monotonic() - started)
            if delay is not None:
                delay = max(delay, retry_after or 0.0)
            if delay is None or time.monotonic() + delay >= deadline:
                return Forwarded(received.id, False, attempt, status, error, retry_after)
            await asyncio.sleep(delay)


def _seconds(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
