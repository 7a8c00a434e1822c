"""One JSON object per log line, on stdout, so the cluster's log pipeline can index the fields."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

# Libraries that log request headers (Authorization, security tokens) at DEBUG: never below WARNING.
_NOISY_LIBRARIES = ("oss2", "urllib3", "requests", "aiohttp.access", "asyncio")


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "msg", **fields}`; fields from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            # The type only: exception messages from HTTP libraries can quote request headers.
            line["exception"] = record.exc_info[0].__name__
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Route the root logger to `stream` (stdout) as JSON lines; silence chatty libraries."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def log_fields(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log one line with structured fields (only if the level is enabled)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})
