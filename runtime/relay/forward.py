"""Forwarding one event to the sink in binary mode, with retries on 5xx, 429 and network errors.

The relay receives structured events only (the signed body is the whole event); each goes out in
binary mode with its attributes spelled as signed and its data bytes as the receiver produced them
(for JSON `data`: compact `json.dumps(..., ensure_ascii=False)` in UTF-8, what the function itself
sent in binary mode before, so the sink gets the same bytes as from a direct delivery).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from ..receiver import ReceivedEvent, RetryPolicy

# CloudEvents HTTP binding 3.1.3.2: printable ASCII is sent as is, except space, '"' and '%'.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
USER_AGENT = "cloudevents-connectors-relay"
# A sink asking for more than an hour is treated as asking for an hour.
MAX_RETRY_AFTER_SECONDS = 3600.0
_DELAY_SECONDS = re.compile(r"[0-9]+")
# What the relay emits as `ce-*` headers must pass the sink's header limits, or the signed event
# is refused there (502) after it was accepted here. aiohttp refuses a header line over 8190 bytes
# and more than 128 headers; Go's net/http (Knative brokers) 1 MiB of headers in all. Kept under
# the smallest of them with room for the request's own headers (Host, Content-Type, ...).
MAX_FORWARDED_ATTRIBUTES = 64
MAX_ATTRIBUTE_HEADER_BYTES = 8000


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


class UnforwardableAttribute(ValueError):
    """An attribute whose JSON value has no CloudEvents type (object, array, float, null)."""


def binary_headers(document: Mapping[str, Any], content_type: str | None) -> dict[str, str]:
    """The binary-mode headers for a structured event `document` (the JSON object as sent and
    signed): every attribute but `data`/`data_base64` as a `ce-` header spelled as it was sent
    (strings percent-encoded per the HTTP binding 3.1.3.2, integers in decimal, booleans as
    true/false), `datacontenttype` as Content-Type. A `null` attribute is unset (JSON format 2.2).
    Raises UnforwardableAttribute for a value no CloudEvents type can hold, and for more than
    MAX_FORWARDED_ATTRIBUTES attributes or more than MAX_ATTRIBUTE_HEADER_BYTES of `ce-*` header
    lines (`name: value` + CRLF, values as encoded), which a sink would refuse.
    """
    headers: dict[str, str] = {}
    size = 0
    for name, value in document.items():
        if name in ("data", "data_base64", "datacontenttype") or value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, str):
            text = quote(value, safe=_HEADER_SAFE)
        else:
            raise UnforwardableAttribute(f"attribute {name!r} is not a CloudEvents type")
        headers[f"ce-{name}"] = text
        size += len(name) + len(text) + 7  # "ce-" + ": " + CRLF; both are ASCII by now
    if len(headers) > MAX_FORWARDED_ATTRIBUTES:
        raise UnforwardableAttribute(
            f"{len(headers)} attributes; at most {MAX_FORWARDED_ATTRIBUTES} can be forwarded"
        )
    if size > MAX_ATTRIBUTE_HEADER_BYTES:
        raise UnforwardableAttribute(
            f"the attributes take {size} bytes as ce-* headers; at most "
            f"{MAX_ATTRIBUTE_HEADER_BYTES} can be forwarded"
        )
    if content_type:
        headers["Content-Type"] = content_type
    headers["User-Agent"] = USER_AGENT
    return headers


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
                    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
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


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` value (RFC 9110 10.2.3: delay-seconds or an HTTP-date) as seconds from
    `now` (default: the clock), capped at MAX_RETRY_AFTER_SECONDS; None when absent or unusable.

    Only ASCII digits count as delay-seconds (`str.isdigit()` also takes "٣" and "²", and `int()`
    refuses more than 4,300 digits): a hostile or broken sink cannot turn its answer into a 500.
    """
    if not value:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        # Bounded before int(): 5,000 digits would exceed int()'s limit.
        seconds = MAX_RETRY_AFTER_SECONDS if len(text) > 6 else float(text)
        return min(seconds, MAX_RETRY_AFTER_SECONDS)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        return None
    delay = moment.timestamp() - (time.time() if now is None else now)
    return min(max(delay, 0.0), MAX_RETRY_AFTER_SECONDS)
