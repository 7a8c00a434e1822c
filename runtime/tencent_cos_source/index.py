"""SCF entry point of the Tencent COS source: `index.main_handler` (Python 3.10 runtime).

A COS notification comes in; every record goes out as one CloudEvent to the sink (binary mode, or
signed structured mode for the relay). If any event is not delivered, or a record cannot become
one, the handler raises naming them, so SCF's asynchronous retry and dead-letter queue take over;
retried records keep their ids. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime, timezone

# In the SCF zip these modules sit next to index.py at the root; in the repository they are the
# package `runtime.tencent_cos_source` (which is how the tests import them).
# Their names carry a `cos_` prefix because the zip root is a flat, shared import namespace.
if __package__:
    from . import cos_delivery as delivery
    from . import cos_event
    from .cos_settings import Settings, SettingsError, load_settings
else:  # pragma: no cover - exercised by the packaged-zip test in a fresh interpreter
    import cos_delivery as delivery
    import cos_event
    from cos_settings import Settings, SettingsError, load_settings

__all__ = ["DeliveryFailed", "Settings", "SettingsError", "handle", "main_handler"]

# Time kept back from the invocation's limit to report failures before SCF kills the function.
SAFETY_MARGIN_SECONDS = 1.0
SAFETY_MARGIN_FRACTION = 0.1

_settings: Settings | None = None
_log_lock = threading.Lock()


class DeliveryFailed(RuntimeError):
    """Some records did not reach the sink: `ids` lists the events the sink did not accept,
    `rejected` the records that could not become events (each "record <n>: <why>")."""

    def __init__(self, ids: list[str], total: int, rejected: list[str] | None = None) -> None:
        self.ids = ids
        self.rejected = rejected or []
        parts = []
        if ids or not self.rejected:
            parts.append(f"{len(ids)} of {total} CloudEvents not delivered: {', '.join(ids)}")
        if self.rejected:
            parts.append(f"{len(self.rejected)} record(s) rejected: {'; '.join(self.rejected)}")
        super().__init__("; ".join(parts))


def main_handler(event: object, context: object) -> dict:
    global _settings
    if _settings is None:  # validated once per container; an invalid setting fails every call
        _settings = load_settings(os.environ)
    return handle(event, context, _settings)


def handle(event: object, context: object, settings: Settings) -> dict:
    """Deliver every record of one COS notification; the summary, or DeliveryFailed.

    A record that cannot become an event is logged and does not stop the others; the invocation
    then still fails, so SCF retries it (delivered records keep their ids) and, in the end, hands
    it to the dead-letter queue.
    """
    started = time.monotonic()
    source = settings.function_name or _context_value(context, "function_name")
    if not source:
        raise SettingsError("FUNCTION_NAME is not set and SCF gave no function name")
    try:
        conversion = cos_event.convert(event, source=str(source), now=datetime.now(timezone.utc))
    except cos_event.NotACosNotification as error:  # nothing is sent; SCF's retry/DLQ keep it
        _log("error", "not a COS notification", error=str(error))
        raise
    for rejected in conversion.rejected:
        _log("error", "record rejected", record=rejected.index, error=rejected.reason)
    events = conversion.events
    deadline = started + delivery_budget(context, settings)
    outcomes = delivery.deliver_all(
        events,
        delivery.Sender(settings.sink_url, settings.signing_key),
        delivery.RetryPolicy(settings.timeout, settings.backoff_initial, settings.backoff_max),
        settings.concurrency,
        deadline,
        lambda outcome: _log_outcome(outcome, settings.debug),
    )
    failed = [outcome.event.id for outcome in outcomes if not outcome.delivered]
    summary = {
        "records": conversion.total,
        "delivered": len(outcomes) - len(failed),
        "failed": len(failed),
        "rejected": len(conversion.rejected),
        "duplicates": conversion.duplicates,
    }
    _log(
        "error" if failed or conversion.rejected else "info",
        "notification handled",
        request_id=_context_value(context, "request_id"),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        **summary,
    )
    if failed or conversion.rejected:
        raise DeliveryFailed(failed, len(events), [str(r) for r in conversion.rejected])
    return {**summary, "ids": [e.id for e in events]}


def delivery_budget(context: object, settings: Settings) -> float:
    """Seconds this invocation may spend delivering: the retry budget, bounded by the time SCF
    gives the function minus a margin to report failures before the platform kills it."""
    remaining = _remaining_seconds(context)
    if remaining is None:
        return settings.retry_budget
    margin = min(SAFETY_MARGIN_SECONDS, remaining * SAFETY_MARGIN_FRACTION)
    return max(0.0, min(settings.retry_budget, remaining - margin))


def _remaining_seconds(context: object) -> float | None:
    # SCF's Python context is a dict with the limit (`time_limit_in_ms`), not the time left; other
    # runtimes and wrappers offer a callable. Anything unexpected falls back to the settings.
    for name in ("get_remaining_time_in_millis", "getRemainingTimeInMillis"):
        method = getattr(context, name, None)
        if callable(method):
            try:
                return float(method()) / 1000
            except (TypeError, ValueError):
                return None
    limit = _context_value(context, "time_limit_in_ms")
    try:
        return float(limit) / 1000 if limit is not None else None
    except (TypeError, ValueError):
        return None


def _context_value(context: object, name: str) -> object:
    if isinstance(context, dict):
        return context.get(name)
    return getattr(context, name, None)


def _log_outcome(outcome: delivery.Outcome, debug: bool) -> None:
    fields = {
        "id": outcome.event.id,
        "subject": outcome.event.subject,
        "attempts": outcome.attempts,
        "status": outcome.status,
        "elapsed_ms": round(outcome.elapsed * 1000, 1),
    }
    if outcome.error:
        fields["error"] = outcome.error
    if debug:
        fields["data"] = outcome.event.record
    if outcome.delivered:
        _log("info", "event delivered", **fields)
    else:
        _log("error", "event not delivered", **fields)


def _log(level: str, message: str, **fields: object) -> None:
    line = json.dumps({"level": level, "msg": message, **fields}, ensure_ascii=False, default=str)
    with _log_lock:  # one write per line, so lines from worker threads never interleave
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
