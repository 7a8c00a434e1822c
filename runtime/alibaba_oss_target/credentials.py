"""Where the target's OSS credentials come from, kept fresh off the request path.

One provider for the OSS SDK (`alibabacloud_oss_v2.credentials.CredentialsProvider`): the SDK asks
it for credentials on every request (synchronously), so `get_credentials()` only returns what is
cached; a background task (`RefreshingCredentials.run`) fetches from one of three sources:

- `StaticSource`: an AccessKey pair (optionally with an STS token) from the environment;
- `StsFileSource`: a mounted JSON file in the form Alibaba's credentials URI / ECS metadata use
  (`AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `Expiration` RFC 3339), re-read whenever it
  changes, so a sidecar or an operator can rotate it without a restart;
- `OidcSource`: RRSA on ACK. The pod's projected service-account token is exchanged for STS
  credentials with `AssumeRoleWithOIDC` by `alibabacloud-credentials`
  (`OIDCRoleArnCredentialsProvider`, which reads `ALIBABA_CLOUD_ROLE_ARN`,
  `ALIBABA_CLOUD_OIDC_PROVIDER_ARN`, `ALIBABA_CLOUD_OIDC_TOKEN_FILE`), fetched again before expiry.

Authentication health: OSS answers that say the credentials are bad (`AUTH_ERROR_CODES`) are
reported here. The first one asks for fresh credentials at once; when they keep failing
(`FAILURES_BEFORE_UNREADY` in a row with no success between, or no usable credentials at all) the
provider is *failing*: `/readyz` answers 503 and one warning is logged with the OSS error code.
It recovers when a PUT succeeds or the source delivers different credentials (then traffic tests
them again), and, for every source, on probation `PROBATION_SECONDS` after it turned not-ready: a
not-ready pod gets no traffic, so no PUT could ever succeed (with a static pair, or a file that did
not change, nothing else would bring it back). On probation `/readyz` is 200 again; if the
credentials are still refused, `FAILURES_BEFORE_UNREADY` more refusals turn it 503 again.
Sender input cannot cause these refusals: every header value the target sends is checked to be
exactly what the SDK signs (see core.plan_write). Secrets are never logged: only the access key
id's last 4 characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from alibabacloud_oss_v2.credentials import CredentialsProvider
from alibabacloud_oss_v2.types import Credentials

from ..receiver.logs import log_fields

# OSS error codes meaning "these credentials are not (or no longer) accepted".
AUTH_ERROR_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "SecurityTokenExpired",
        "InvalidSecurityToken",
    }
)
FAILURES_BEFORE_UNREADY = 3
# Not-ready because OSS refused the credentials: ready again (on probation) after this long.
PROBATION_SECONDS = 30.0
# Fetch STS credentials again this long before they expire (alibabacloud-credentials' own
# refresh point for AssumeRoleWithOIDC is 15 minutes before expiry; a file is re-read sooner).
REFRESH_MARGIN_SECONDS = 15 * 60
FILE_POLL_SECONDS = 5.0
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)


class CredentialsUnavailable(Exception):
    """The source could not produce credentials; `code` names why (no secret in the message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CredentialsSource(Protocol):
    """`fetch()` -> current credentials (raises CredentialsUnavailable); `refreshable` is False
    for a static pair (fetching again cannot change it)."""

    name: str
    refreshable: bool

    async def fetch(self) -> Credentials: ...


@dataclass
class StaticSource:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    name: str = "accessKey"
    refreshable: bool = False

    def __repr__(self) -> str:
        return f"StaticSource(access_key_id=...{self.access_key_id[-4:]})"

    async def fetch(self) -> Credentials:
        return Credentials(self.access_key_id, self.access_key_secret, self.security_token)


class StsFileSource:
    """Reads `path` (JSON: AccessKeyId, AccessKeySecret, SecurityToken?, Expiration?) when its
    inode, size or modification time changed since the last read (a Kubernetes Secret volume
    swaps a symlink, which changes the inode; a rewrite changes the mtime)."""

    name = "stsFile"
    refreshable = True

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._cached: Credentials | None = None

    def changed(self) -> bool:
        try:
            info = os.stat(self.path)
        except OSError:
            return True
        return (info.st_ino, info.st_size, info.st_mtime_ns) != self._seen

    async def fetch(self) -> Credentials:
        if self._cached is not None and not self.changed():
            return self._cached
        try:
            info = os.stat(self.path)
            with open(self.path, encoding="utf-8") as file:
                document = json.load(file)
        except OSError as error:
            raise CredentialsUnavailable(
                "CredentialsFileUnreadable", f"cannot read {self.path}: {error.strerror}"
            ) from None
        except ValueError:
            raise CredentialsUnavailable(
                "CredentialsFileInvalid", f"{self.path} is not JSON"
            ) from None
        credentials = parse_sts_document(document, where=self.path)
        self._seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        self._cached = credentials
        return credentials


def parse_sts_document(document: object, *, where: str) -> Credentials:
    """The credentials URI / ECS metadata JSON shape -> Credentials; raises CredentialsUnavailable
    naming the missing field (never quoting a value)."""
    if not isinstance(document, dict):
        raise CredentialsUnavailable("CredentialsFileInvalid", f"{where} is not a JSON object")
    values = {}
    for name in ("AccessKeyId", "AccessKeySecret"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise CredentialsUnavailable("CredentialsFileInvalid", f"{where} has no {name}")
        values[name] = value
    token = document.get("SecurityToken")
    if token is not None and not isinstance(token, str):
        raise CredentialsUnavailable("CredentialsFileInvalid", f"{where}: SecurityToken not text")
    expiration = None
    if document.get("Expiration"):
        try:
            expiration = parse_expiration(str(document["Expiration"]))
        except ValueError:
            raise CredentialsUnavailable(
                "CredentialsFileInvalid", f"{where}: Expiration is not an RFC 3339 time"
            ) from None
    return Credentials(values["AccessKeyId"], values["AccessKeySecret"], token or None, expiration)


def parse_expiration(text: str) -> datetime:
    """`2026-11-30T01:00:00Z` (what STS and ECS metadata write) -> aware UTC datetime."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class OidcSource:
    """RRSA: AssumeRoleWithOIDC through `alibabacloud-credentials` (it reads the token file each
    time it exchanges, so the kubelet's token rotation is followed). `sts_endpoint` overrides the
    STS host (a full `http://host:port` reaches a local emulator)."""

    name = "rrsa"
    refreshable = True

    def __init__(
        self,
        *,
        role_arn: str,
        oidc_provider_arn: str,
        oidc_token_file: str,
        role_session_name: str | None = None,
        sts_endpoint: str | None = None,
        duration_seconds: int = 3600,
        timeout_seconds: float = 10.0,
    ) -> None:
        from alibabacloud_credentials.http import HttpOptions
        from alibabacloud_credentials.provider.oidc import OIDCRoleArnCredentialsProvider

        _quiet_library_logger()
        milliseconds = int(timeout_seconds * 1000)
        self._make = lambda: OIDCRoleArnCredentialsProvider(
            role_arn=role_arn,
            oidc_provider_arn=oidc_provider_arn,
            oidc_token_file_path=oidc_token_file,
            role_session_name=role_session_name or "alibaba-oss-target",
            sts_endpoint=sts_endpoint or None,
            duration_seconds=duration_seconds,
            http_options=HttpOptions(connect_timeout=milliseconds, read_timeout=milliseconds),
        )
        self._provider = self._make()

    def invalidate(self) -> None:
        """Forget the library's cached credentials: the next fetch exchanges the token again
        (after OSS refused them, waiting for their stale time would keep failing)."""
        self._provider = self._make()

    async def fetch(self) -> Credentials:
        try:
            fetched = await self._provider.get_credentials_async()
        except OSError as error:
            raise CredentialsUnavailable(
                "OidcTokenUnreadable", f"cannot read the OIDC token file: {error.strerror}"
            ) from None
        except Exception as error:  # the library raises CredentialException / RetryError
            code = _sts_code(error)
            raise CredentialsUnavailable(
                code, f"AssumeRoleWithOIDC failed: {code} ({type(error).__name__})"
            ) from None
        expiration = fetched.get_expiration()
        return Credentials(
            fetched.get_access_key_id(),
            fetched.get_access_key_secret(),
            fetched.get_security_token(),
            datetime.fromtimestamp(expiration, timezone.utc) if expiration else None,
        )


_STS_CODE = re.compile(r'"Code"\s*:\s*"([^"]{1,200})"')


def _sts_code(error: Exception) -> str:
    """The STS error code out of the library's message, which quotes the STS answer (that holds
    only Code, Message, RequestId: never the OIDC token or a secret)."""
    found = _STS_CODE.search(str(error))
    return found.group(1) if found else "AssumeRoleWithOIDCFailed"


def _quiet_library_logger() -> None:
    # alibabacloud-credentials attaches its own plain-text stderr handler at import; our JSON
    # log line (once per state change) replaces its per-attempt tracebacks.
    library = logging.getLogger("credentials")
    library.handlers.clear()
    library.propagate = False
    library.setLevel(logging.CRITICAL)


class RefreshingCredentials(CredentialsProvider):
    """The SDK's credentials provider: cached credentials, refreshed by `run()` in the background.

    `get_credentials()` never does I/O (the SDK calls it on the event loop for every request); it
    returns None before the first successful fetch, which the SDK reports as empty credentials.
    """

    def __init__(
        self,
        source: CredentialsSource,
        logger: logging.Logger,
        *,
        clock=time.time,
        margin_seconds: float = REFRESH_MARGIN_SECONDS,
        poll_seconds: float = FILE_POLL_SECONDS,
        probation_seconds: float = PROBATION_SECONDS,
    ) -> None:
        self.source = source
        self._logger = logger
        self._clock = clock
        self._margin = margin_seconds
        self._poll = poll_seconds
        self._probation = probation_seconds
        self._auth_failed_at: float | None = None  # when OSS refusals made it not ready
        self._current: Credentials | None = None
        self._wake = asyncio.Event()
        self._auth_failures = 0
        self._refresh_failures = 0  # fetches that failed in a row
        self.failing_code: str | None = None  # set while authentication is failing

    # ---- the SDK side

    def get_credentials(self) -> Credentials | None:
        return self._current

    @property
    def ready(self) -> bool:
        """False while authentication is failing or no credentials could be fetched yet."""
        return self._current is not None and self.failing_code is None

    # ---- what the writer reports

    def auth_failed(self, code: str) -> None:
        """OSS refused the credentials with `code` (one of AUTH_ERROR_CODES)."""
        self._auth_failures += 1
        if self._auth_failures == 1:
            self._refetch_now()
        if self._auth_failures >= FAILURES_BEFORE_UNREADY and self.failing_code is None:
            self._fail(code)
            self._auth_failed_at = self._clock()
            self._refetch_now()
            self._wake.set()  # the refresh task times the probation

    def _refetch_now(self) -> None:
        if not self.source.refreshable:
            return
        invalidate = getattr(self.source, "invalidate", None)
        if invalidate is not None:
            invalidate()
        self._wake.set()

    def succeeded(self) -> None:
        self._auth_failures = 0
        if self.failing_code is not None and self._current is not None:
            self._recover()

    # ---- the background side

    async def refresh(self) -> bool:
        """Fetch once; True when the credentials changed. Failures set the failing state when no
        usable credentials are left (none yet, or the cached ones expired)."""
        try:
            fetched = await self.source.fetch()
        except CredentialsUnavailable as error:
            self._refresh_failures += 1
            if self._current is None or self._expired(self._current):
                self._current = None
                self._fail(error.code, detail=str(error))
            elif self._refresh_failures == 1:
                log_fields(
                    self._logger,
                    logging.WARNING,
                    "credentials refresh failed; the cached ones are still valid",
                    source=self.source.name,
                    code=error.code,
                    reason=str(error),
                )
            return False
        self._refresh_failures = 0
        changed = self._current is None or _identity(fetched) != _identity(self._current)
        self._current = fetched
        if changed:
            self._auth_failures = 0
            log_fields(
                self._logger,
                logging.INFO,
                "credentials loaded",
                source=self.source.name,
                access_key_id=_masked(fetched.access_key_id),
                expires=fetched.expiration.isoformat() if fetched.expiration else None,
            )
            if self.failing_code is not None:
                self._recover()
        return changed

    async def run(self) -> None:
        """Refresh until cancelled (after a first `refresh()`): before expiry, on a changed file,
        at once after an auth failure, and with backoff while no working credentials are at
        hand. A static pair that was fetched needs nothing more."""
        failures = 0
        while True:
            self._end_probation_wait()
            if not self.source.refreshable and self._current is not None:
                if self._auth_failed_at is None:
                    # Nothing to refresh; wait until OSS refusals start a probation timer.
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._probation_left())
                continue
            troubled = self._current is None or self.failing_code or self._refresh_failures
            failures = failures + 1 if troubled else 0
            delay = self._next_delay(failures)
            if self._auth_failed_at is not None:
                delay = min(delay, self._probation_left())
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            await self.refresh()

    def _probation_left(self) -> float:
        if self._auth_failed_at is None:
            return self._probation
        return max(0.0, self._auth_failed_at + self._probation - self._clock())

    def _end_probation_wait(self) -> None:
        """Not ready because of OSS refusals for PROBATION_SECONDS: ready again, on probation."""
        if self.failing_code is None:
            self._auth_failed_at = None
            return
        if self._auth_failed_at is None or self._current is None or self._probation_left() > 0:
            return
        log_fields(
            self._logger,
            logging.WARNING,
            "authentication on probation: ready again until OSS refuses the credentials again",
            source=self.source.name,
            code=self.failing_code,
        )
        self.failing_code = None
        self._auth_failures = 0
        self._auth_failed_at = None

    def _next_delay(self, failures: int) -> float:
        if failures:
            return RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1]
        if isinstance(self.source, StsFileSource):
            return self._poll
        expiration = self._current.expiration if self._current else None
        if expiration is None:
            return 300.0
        return max(1.0, expiration.timestamp() - self._margin - self._clock())

    def _expired(self, credentials: Credentials) -> bool:
        expiration = credentials.expiration
        return expiration is not None and expiration.timestamp() <= self._clock()

    def _fail(self, code: str, detail: str | None = None) -> None:
        if self.failing_code is not None:
            return
        self.failing_code = code
        log_fields(
            self._logger,
            logging.ERROR,
            "authentication failing; not ready until credentials work again",
            source=self.source.name,
            code=code,
            reason=detail,
            access_key_id=_masked(self._current.access_key_id) if self._current else None,
        )

    def _recover(self) -> None:
        log_fields(
            self._logger,
            logging.INFO,
            "authentication recovered",
            source=self.source.name,
            code=self.failing_code,
        )
        self.failing_code = None
        self._auth_failures = 0
        self._auth_failed_at = None


def _identity(credentials: Credentials) -> tuple[str, str, str | None]:
    return credentials.access_key_id, credentials.access_key_secret, credentials.security_token


def _masked(access_key_id: str) -> str:
    return "..." + access_key_id[-4:]
