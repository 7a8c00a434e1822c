"""Delivery of CloudEvents to one sink: HTTP POST, bounded concurrency, retries.

Standard library only (`http.client`; https through `ssl`'s default context, which verifies the
certificate and the host name). Each worker thread keeps one keep-alive connection.

Modes: binary (`ce-*` headers, `data` as the body) to an unsigned sink such as a Vanus gateway or
a broker; structured (`application/cloudevents+json`, every attribute inside the body) when the
sink is the relay, so the Standard Webhooks signature over the body covers the whole event.

Retries follow the Knative data-plane contract (knative/specs `specs/eventing/data-plane.md`,
"Event Acknowledgement and Delivery Retry"): 5xx, 429, 404 (the endpoint does not exist yet) and 409
(processing in progress), timeouts and connection errors are retried with
exponential backoff and jitter until the deadline; any other answer is final for that event, and so
is a TLS certificate that does not verify (it will not verify on the next attempt either).
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import http.client
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

USER_AGENT = "cloudevents-connectors-tencent-cos-source"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
# CloudEvents HTTP binding 3.1.3.2: printable ASCII is sent as is, except space, '"' and '%'.
_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in ' "%')
RETRYABLE_CLIENT_STATUSES = frozenset({404, 409, 429})
# A Retry-After beyond this is not believed (ignored): a day is longer than any SCF invocation.
MAX_RETRY_AFTER_SECONDS = 86400
# An answer body longer than this is not read to its end: the connection is closed instead.
MAX_DRAIN_BYTES = 64 * 1024

_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """One verifying TLS context per container: loading the CA bundle takes milliseconds."""
    global _tls
    if _tls is None:
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
    return "v1," + base64.b64encode(mac).decode("ascii")


class Sender:
    """Posts events to `url`: signed structured mode with a signing key, binary mode without.

    `post` may be called from several threads, each with its own connection from `connect`.
    """

    def __init__(self, url: str, signing_key: bytes | None = None) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._signing_key = signing_key
        self._ssl = _tls_context() if self._https else None

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        """A connection that opens on its first request, and again after any close."""
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._ssl
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def request(self, event) -> tuple[dict[str, str], bytes]:
        """Headers and body of one attempt (a fresh `webhook-timestamp` on every attempt)."""
        if self._signing_key is None:
            return binary_headers(event.attributes), event.body
        body = event.structured()
        timestamp = int(time.time())
        headers = {
            "Content-Type": STRUCTURED_CONTENT_TYPE,
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._signing_key, event.id, timestamp, body),
        }
        return headers, body

    def post(self, conn: http.client.HTTPConnection, event, timeout: float):
        """One attempt: (status, Retry-After seconds or None).

        Raises OSError (ssl.SSLCertVerificationError among them) or http.client.HTTPException,
        after which the connection is closed and reopens on the next request.
        """
        headers, body = self.request(event)
        headers["User-Agent"] = USER_AGENT
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        try:
            conn.request("POST", self._path, body=body, headers=headers)
            response = conn.getresponse()
            response.read(MAX_DRAIN_BYTES)
            if not response.isclosed():  # too long to drain: start afresh next time
                conn.close()
        except BaseException:
            conn.close()
            raise
        return response.status, retry_after_seconds(response.getheader("Retry-After"))


class RetryPolicy:
    __slots__ = ("backoff_initial", "backoff_max", "timeout")

    def __init__(self, timeout: float, backoff_initial: float, backoff_max: float) -> None:
        self.timeout = timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    def backoff(self, attempt: int) -> float:
        """Equal jitter: half the exponential step, plus up to the other half at random."""
        step = min(self.backoff_max, self.backoff_initial * 2 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)  # noqa: S311 - jitter, not a secret


def retryable(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_CLIENT_STATUSES


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` value asks to wait (RFC 9110 10.2.3), or None when it is absent or
    not believable.

    delta-seconds must be ASCII digits (`str.isdigit()` also accepts "²" and "٣", which http.client
    hands over from latin-1 bytes); an HTTP-date counts from `now` (Unix seconds); a value beyond
    MAX_RETRY_AFTER_SECONDS, negative, or malformed is ignored rather than trusted.
    """
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        # The length first: int() refuses more than 4,300 digits, and 7 are already too many.
        digits = text.lstrip("0")
        seconds = int(digits or "0") if len(digits) <= 6 else MAX_RETRY_AFTER_SECONDS + 1
    else:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if moment.tzinfo is None:  # RFC 9110: an HTTP-date is always GMT
            return None
        seconds = max(0.0, moment.timestamp() - (time.time() if now is None else now))
    return float(seconds) if seconds <= MAX_RETRY_AFTER_SECONDS else None


def deliver_all(
    events: Sequence,
    sender: Sender,
    policy: RetryPolicy,
    concurrency: int,
    deadline: float,
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome]:
    """Deliver every event (a `cos_event.CosEvent`) before `deadline` (monotonic).

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
                with contextlib.suppress(Exception):  # a broken log must not stop deliveries
                    on_outcome(outcome)
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


def _deliver_one(event, sender: Sender, policy: RetryPolicy, deadline: float, conn) -> Outcome:
    attempt, status, error = 0, None, None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Outcome(event, False, attempt, status, error or "out of time")
        attempt += 1
        timeout = min(policy.timeout, remaining)
        retry_after = None
        try:
            status, retry_after = sender.post(conn, event, timeout)
            error = None if 200 <= status < 300 else f"HTTP {status}"
        except ssl.SSLCertVerificationError as exc:  # the same certificate fails every time
            return Outcome(event, False, attempt, None, _describe(exc))
        except (OSError, http.client.HTTPException) as exc:
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
