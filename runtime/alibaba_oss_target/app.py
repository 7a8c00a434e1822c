"""Wiring: settings -> writer -> uploader -> handler -> receiver (no I/O until served)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry

from ..receiver import Receiver
from ..receiver.retry import RetryPolicy
from .metrics import TargetMetrics
from .service import OssTarget
from .settings import TargetSettings
from .uploader import Uploader
from .writer import ObjectWriter, Oss2Writer

NAME = "oss_target"


def build_target(
    settings: TargetSettings,
    *,
    writer: ObjectWriter | None = None,
    policy: RetryPolicy | None = None,
) -> tuple[Receiver, Uploader]:
    """The receiver to serve and the uploader to close after draining (`uploader.close`)."""
    registry = CollectorRegistry()
    metrics = TargetMetrics(registry)
    uploader = Uploader(
        writer if writer is not None else Oss2Writer(settings),
        max_concurrency=settings.max_concurrency,
        policy=policy or RetryPolicy(budget=settings.retry_budget_seconds),
        metrics=metrics,
    )
    logger = logging.getLogger(f"runtime.{NAME}")
    handler = OssTarget(
        uploader,
        metrics,
        bucket=settings.bucket,
        prefix=settings.key_prefix,
        store=settings.store,
        source=settings.response_source,
        logger=logger,
    )
    receiver = Receiver(
        handler,
        name=NAME,
        max_body_bytes=settings.server.max_body_bytes,
        max_in_flight=settings.server.max_in_flight,
        registry=registry,
        logger=logger,
    )
    return receiver, uploader
