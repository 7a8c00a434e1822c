"""Wiring: settings -> credentials -> writer -> uploader -> handler -> receiver (no I/O yet).

The credentials' refresh task starts and stops with the aiohttp application (`on_startup`,
`on_cleanup`), so it runs on the serving loop; readiness is the credentials' health.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from prometheus_client import CollectorRegistry

from ..receiver import Receiver
from ..receiver.retry import RetryPolicy
from .batching import Batcher
from .credentials import (
    CredentialsSource,
    OidcSource,
    RefreshingCredentials,
    StaticSource,
    StsFileSource,
)
from .metrics import TargetMetrics
from .service import OssTarget
from .settings import TargetSettings
from .uploader import Uploader
from .writer import ObjectWriter, OssWriter

NAME = "oss_target"


def credentials_source(settings: TargetSettings) -> CredentialsSource:
    """The one source the settings name (see settings.CREDENTIAL_SOURCES)."""
    if settings.rrsa is not None:
        rrsa = settings.rrsa
        return OidcSource(
            role_arn=rrsa.role_arn,
            oidc_provider_arn=rrsa.oidc_provider_arn,
            oidc_token_file=rrsa.oidc_token_file,
            role_session_name=rrsa.role_session_name,
            sts_endpoint=rrsa.sts_endpoint,
            duration_seconds=rrsa.duration_seconds,
            timeout_seconds=settings.timeout_seconds,
        )
    if settings.credentials_file:
        return StsFileSource(settings.credentials_file)
    return StaticSource(
        settings.access_key_id, settings.access_key_secret, settings.security_token or None
    )


def build_target(
    settings: TargetSettings,
    *,
    writer: ObjectWriter | None = None,
    policy: RetryPolicy | None = None,
    credentials: RefreshingCredentials | None = None,
) -> tuple[Receiver, Uploader]:
    """The receiver to serve and the uploader to close after draining (`uploader.close`).
    `credentials` (tests: short intervals) defaults to the settings' source with the defaults."""
    registry = CollectorRegistry()
    metrics = TargetMetrics(registry)
    logger = logging.getLogger(f"runtime.{NAME}")
    if credentials is None:
        credentials = RefreshingCredentials(credentials_source(settings), logger)
    uploader = Uploader(
        writer if writer is not None else OssWriter(settings, credentials),
        max_concurrency=settings.max_concurrency,
        policy=policy or RetryPolicy(budget=settings.retry_budget_seconds),
        metrics=metrics,
        credentials=credentials,
    )
    batcher = None
    if settings.batch is not None:
        batcher = Batcher(uploader, metrics, settings.batch, logger=logger)
    handler = OssTarget(
        uploader,
        metrics,
        bucket=settings.bucket,
        prefix=settings.key_prefix,
        store=settings.store,
        source=settings.response_source,
        logger=logger,
        template=settings.key_template,
        batcher=batcher,
        # At most half the upload slots wait on bodies still arriving (none with one slot).
        head_starts=settings.max_concurrency // 2,
        head_start_bytes=settings.head_start_bytes,
    )
    receiver = Receiver(
        handler,
        name=NAME,
        max_body_bytes=settings.server.max_body_bytes,
        max_in_flight=settings.server.max_in_flight,
        registry=registry,
        logger=logger,
        is_ready=lambda: credentials.ready,
        head_start=handler.head_start,
    )
    if batcher is not None:
        # Requests waiting for an open object are answered before the drain deadline: on
        # SIGTERM every open object is uploaded at once. Until then each waiting request keeps
        # its body's reservation in the receiver's byte budget, so open objects count there.
        receiver.on_draining.append(batcher.roll_all)
    _run_with_app(receiver.app, credentials)
    return receiver, uploader


def _run_with_app(app: web.Application, credentials: RefreshingCredentials) -> None:
    """Refresh credentials for as long as the application serves."""
    tasks: list[asyncio.Task] = []

    async def start(app: web.Application) -> None:
        # A static pair is there at once, so the first request never waits for the task.
        await credentials.refresh()
        tasks.append(asyncio.create_task(credentials.run(), name="oss-credentials"))

    async def stop(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
