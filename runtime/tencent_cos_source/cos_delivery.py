"""Delivery of CloudEvents to one sink: HTTP POST in binary mode, bounded concurrency, retries.

Standard library only. Each worker thread keeps one keep-alive connection (`cos_http`, which
imports in a fraction of `http.client`'s time). 5xx, 429, timeouts and connection errors are
retried with exponential backoff and jitter until the deadline; any other answer is final for
that event.
"""

from __future__ import annotations

import binascii
import hmac
import os
import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlsplit

if __package__:
    from .cos_http import Connection, ProtocolError
else:  # pragma: no cover - the flat zip root, exercised by the packaged-zip test
    from cos_http import Connection, ProtocolError

USER_AGENT = "cloudevents-connectors-tencent-cos-source"
# CloudEvents HTTP binding 3.1.3.2: printable ASCII is sent as is, except space, '"' and '%'.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')


_tls = None


def _tls_context():
    """One verifying TLS context per container: loading the CA bundle takes milliseconds.

    `ssl` (OpenSSL) is imported here, on the first https delivery, so plain-http sinks such as a
    Vanus gateway inside the VPC never load it.
    """
    global _tls
    if _tls is None:
        import ssl

        _tls = ssl.create_default_context()
    return _tls


class Outcome:
    __slots__ = ("attempts", "delivered", "elapsed", "error", "event", "status")

    def __init__(
        self, event, delivered: bool, attempts: int, status: int | None, error: str | None
    ):
        self.event = event
        self.delivered = delivered
        self.attempts = attempts
        self.status = status
        self.error = error
        self.elapsed = 0.0


def binary_headers(attributes: dict[str, str]) -> dict[str, str]:
    headers = {"Content-Type": attributes.get("datacontenttype", "application/json")}
    for name, value in attributes.items():
        if name != "datacontenttype":
            headers[f"ce-{name}"] = quote(value, safe=_HEADER_SAFE)
    return headers


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Standard Webhooks `webhook-signature` value: v1,base64(HMAC-SHA256(id.timestamp.body))."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, "sha256").digest()
    return "v1," + binascii.b2a_base64(mac, newline=False).decode("ascii")


class Sender:
    """Posts events to `url`; `post` is safe to call from one thread per Sender connection."""

    def __init__(self, url: str, signing_key: bytes | None = None) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._signing_key = signing_key
        self._ssl = _tls_context() if self._https else None

    def connect(self, timeout: float) -> Connection:
        """A connection that opens on its first request, and again after any close."""
        return Connection(self._host, self._port, timeout, tls=self._ssl)

    def post(self, conn, attributes: dict[str, str], body: bytes, timeout: float):
        """One attempt: (status, Retry-After seconds or None). Raises OSError/ProtocolError."""
        headers = binary_headers(attributes)
        headers["User-Agent"] = USER_AGENT
        if self._signing_key is not None:
            timestamp = int(time.time())
            headers["webhook-id"] = attributes["id"]
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign(
                self._signing_key, attributes["id"], timestamp, body
            )
        conn.timeout = timeout
        response = conn.request("POST", self._path, headers, body)
        return response.status, _retry_after(response.headers.get("retry-after"))


class RetryPolicy:
    __slots__ = ("backoff_initial", "backoff_max", "timeout")

    def __init__(self, timeout: float, backoff_initial: float, backoff_max: float) -> None:
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    def backoff(self, attempt: int) -> float:
        """Equal jitter: half the exponential step, plus up to the other half at random."""
        step = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return step / 2 + step / 2 * _unit_fraction()


def _unit_fraction() -> float:
    """Uniform in [0, 1): jitter needs no more than this, and `random` costs a cold start 1-2 ms."""
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


def deliver_all(
    events: Sequence,
    sender: Sender,
    policy: RetryPolicy,
    concurrency: int,
    deadline: float,
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome]:
    """Deliver every event (each has `.attributes` and `.body`) before `deadline` (monotonic).

    Outcomes come back in event order; `on_outcome` is called from worker threads as each ends.
    """
    outcomes: list[Outcome | None] = [None] * len(events)
    next_index = iter(range(len(events)))
    lock = threading.Lock()

    def work() -> None:
        conn = sender.connect(policy.timeout)  # reopens itself whenever it had to be closed
        try:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                started = time.monotonic()
                try:
                    outcome = _deliver_one(events[index], sender, policy, deadline, conn)
                except Exception as exc:  # a bug must fail the event, never lose it silently
                    conn.close()
                    outcome = Outcome(events[index], False, 1, None, _describe(exc))
                outcome.elapsed = time.monotonic() - started
                outcomes[index] = outcome
                try:  # noqa: SIM105 - contextlib.suppress would cost the cold start 1 ms
                    on_outcome(outcome)
                except Exception:  # noqa: S110 - a broken log must not stop deliveries
                    pass
        finally:
            conn.close()

    workers = min(concurrency, len(events))
    if workers <= 1:
        work()
    else:
        threads = [threading.Thread(target=work, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    # Safety net: an event whose worker died anyway counts as not delivered, never as nothing.
    return [
        outcome if outcome is not None else Outcome(event, False, 0, None, "not attempted")
        for event, outcome in zip(events, outcomes, strict=True)
    ]


def _deliver_one(
    event, sender: Sender, policy: RetryPolicy, deadline: float, conn: Connection
) -> Outcome:
    attempt, status, error = 0, None, None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Outcome(event, False, attempt, status, error or "out of time")
        attempt += 1
        timeout = min(policy.timeout, remaining)
        retry_after = None
        try:
            status, retry_after = sender.post(conn, event.attributes, event.body, timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except (OSError, ProtocolError) as exc:  # the connection closed itself
            status, error = None, _describe(exc)
        if error is None:
            return Outcome(event, True, attempt, status, None)
        if status is not None and not retryable(status):
            return Outcome(event, False, attempt, status, error)
        delay = policy.backoff(attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if time.monotonic() + delay >= deadline:
            return Outcome(event, False, attempt, status, error)
        time.sleep(delay)


def _describe(exc: BaseException) -> str:
    # The exception text never holds the signing key; the URL is not included on purpose.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _retry_after(value: str | None) -> float | None:
    if value and value.strip().isdigit():
        return float(value.strip())
    return None
