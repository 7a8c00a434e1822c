"""Where the target's OSS credentials come from, kept fresh off the request path.

One provider for the OSS SDK (`alibabacloud_oss_v2.credentials.CredentialsProvider`): the SDK asks
it for credentials on every request (synchronously), so `get_credentials()` only returns what is
cached; a background task (`RefreshingCredentials.run`) fetches from one of three sources:

- `StaticSource`: an AccessKey pair (optionally with an STS token) from the environment;
- `StsFileSource`: a mounted JSON file in the form Alibaba's credentials URI / ECS metadata use
  (`AccessKeyId`, `AccessKeySecret`, `SecurityToken`, `Expiration` RFC 3339), read every
  `FILE_POLL_SECONDS` (whatever failed before) and taken when its bytes changed, so a sidecar or an
  operator can rotate it without a restart;
- `OidcSource`: RRSA on ACK. The pod's projected service-account token is exchanged for STS
  credentials with `AssumeRoleWithOIDC` by `alibabacloud-credentials`
  (`OIDCRoleArnCredentialsProvider`), on *our* schedule (`refresh_after`): every fetch is one
  exchange, and fetches are single-flight and rate-limited (`REFETCH_SECONDS`).

Authentication health (`/readyz`). OSS answers that say the credentials are bad
(`AUTH_ERROR_CODES`, clock skew included: a pod problem, not the event's) are reported with
`refused()`. Every refusal counts, whatever generation of credentials it hit, until a PUT succeeds:
a fresh key that is refused too keeps counting. The first refusal asks the source for fresh
credentials (one fetch at a time; an STS exchange at most once per `REFETCH_SECONDS`), and the
refused upload is tried once more when they differ. At `FAILURES_BEFORE_UNREADY` the provider is
*failing*: `/readyz` answers 503, one ERROR line names the code. Not ready as well: no credentials
yet, or the cached ones are past their `Expiration` (one ERROR line, `CredentialsExpired`).

The way back, for every source: different credentials from the source (a rotated file, a new STS
exchange) or, with none, `PROBATION_SECONDS` after the last refusal, the provider goes ready *on
probation* (RRSA fetches again first). Kubernetes then routes events again; the first one is the
probe: stored -> healthy ("authentication recovered", INFO), refused -> failing again at once
(no new log line, same code; the event is answered 503 + Retry-After, so the broker redelivers).
No object is written just to test credentials (the writer's policy is put-only, and a health
object would pollute the bucket). Bound: ready again at most `PROBATION_SECONDS` (+ the
kubelet's probe period) after credentials work again.

Sender input cannot cause these refusals: every header value the target sends is checked to be
exactly what the SDK signs (core.plan_write, on main since the corefix merge).

Secrets are never logged: only the access key id's last 4 characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from alibabacloud_oss_v2.credentials import CredentialsProvider
from alibabacloud_oss_v2.types import Credentials

from ..receiver.events import parse_rfc3339
from ..receiver.logs import log_fields

# OSS error codes meaning "these credentials (or this pod's clock) are not accepted".
AUTH_ERROR_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "SecurityTokenExpired",
        "InvalidSecurityToken",
        "RequestTimeTooSkewed",
    }
)
# Refusals that say the pod's state is at fault, never the event: answered 503 + Retry-After.
POD_STATE_CODES = frozenset({"SecurityTokenExpired", "RequestTimeTooSkewed"})
FAILURES_BEFORE_UNREADY = 3
# Expiring credentials are fetched again `min(REFRESH_MARGIN_SECONDS, lifetime / 3)` before
# expiry, and never sooner than MIN_REFRESH_SECONDS after the last fetch (900 s STS credentials:
# every 600 s, not once a second inside alibabacloud-credentials' 15-minute stale window).
REFRESH_MARGIN_SECONDS = 15 * 60
MIN_REFRESH_SECONDS = 60.0
FILE_POLL_SECONDS = 5.0
# A failed STS exchange is retried with this backoff (a file is simply read at the next poll).
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# Refusal-triggered STS exchanges, at most one per this many seconds.
REFETCH_SECONDS = 10.0
# Not ready because OSS refused the credentials: ready again, on probation, this long after the
# last refusal (a not-ready pod gets no traffic, so no PUT could succeed to bring it back).
PROBATION_SECONDS = 30.0
MAX_FILE_BYTES = 64 * 1024


class CredentialsUnavailable(Exception):
    """The source could not produce credentials; `code` names why (no secret in the message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class CredentialsSource(Protocol):
    """`fetch()` -> current credentials (raises CredentialsUnavailable); `refreshable` is False
    for a static pair (fetching again cannot change it); `remote` is True when a fetch costs a
    network call (rate-limited, backed off)."""

    name: str
    refreshable: bool
    remote: bool

    async def fetch(self) -> Credentials: ...


@dataclass
class StaticSource:
    access_key_id: str
    access_key_secret: str
    security_token: str | None = None
    name: str = "accessKey"
    refreshable: bool = False
    remote: bool = False

    def __repr__(self) -> str:
        return f"StaticSource(access_key_id=...{self.access_key_id[-4:]})"

    async def fetch(self) -> Credentials:
        return Credentials(self.access_key_id, self.access_key_secret, self.security_token)


class StsFileSource:
    """Reads `path` (JSON: AccessKeyId, AccessKeySecret, SecurityToken?, Expiration?) at every
    fetch and parses it when its bytes changed: comparing bytes, not (inode, size, mtime), sees a
    same-length rewrite inside one mtime tick too; the file is small (at most MAX_FILE_BYTES)."""

    name = "stsFile"
    refreshable = True
    remote = False

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen: bytes | None = None
        self._cached: Credentials | None = None

    async def fetch(self) -> Credentials:
        content = read_credentials_file(self.path)
        if self._cached is not None and content == self._seen:
            return self._cached
        credentials = parse_sts_text(content, where=self.path)
        self._seen, self._cached = content, credentials
        return credentials


def read_credentials_file(path: str) -> bytes:
    """The file's bytes; raises CredentialsUnavailable (CredentialsFileUnreadable) when it is
    missing, unreadable, a directory, empty or larger than MAX_FILE_BYTES."""
    try:
        with open(path, "rb") as file:
            content = file.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise CredentialsUnavailable(
            "CredentialsFileUnreadable", f"cannot read {path}: {reason}"
        ) from None
    if not content.strip():
        raise CredentialsUnavailable("CredentialsFileUnreadable", f"{path} is empty")
    if len(content) > MAX_FILE_BYTES:
        raise CredentialsUnavailable(
            "CredentialsFileInvalid", f"{path} is larger than {MAX_FILE_BYTES} bytes"
        )
    return content


def parse_sts_text(content: bytes, *, where: str) -> Credentials:
    """File bytes -> Credentials; every failure (not UTF-8, not JSON, nested too deep, bad
    fields) raises CredentialsUnavailable, never anything else."""
    try:
        document = json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise CredentialsUnavailable("CredentialsFileInvalid", f"{where} is not JSON") from None
    return parse_sts_document(document, where=where)


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
    if document.get("Expiration") is not None:
        text = document["Expiration"]
        try:
            if not isinstance(text, str):
                raise ValueError(text)
            expiration = parse_expiration(text)
        except ValueError:
            raise CredentialsUnavailable(
                "CredentialsFileInvalid", f"{where}: Expiration is not a usable RFC 3339 time"
            ) from None
    return Credentials(values["AccessKeyId"], values["AccessKeySecret"], token or None, expiration)


def parse_expiration(text: str) -> datetime:
    """RFC 3339 date-time as written (`2026-11-30T01:00:00Z`, lowercase `t`/`z`, a leap second
    `:60`; the receiving core's parser) -> aware UTC datetime. Raises ValueError for anything
    else (ISO 8601 week dates, basic format, a bare date) and for times UTC cannot hold."""
    try:
        return parse_rfc3339(text).astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("outside the representable range") from None


class OidcSource:
    """RRSA: AssumeRoleWithOIDC through `alibabacloud-credentials`. Each `fetch()` is one
    exchange (a new library provider, so its own 15-minute stale window never decides when: the
    caller schedules); the library reads the token file each time, following the kubelet's
    rotation. `sts_endpoint` overrides the STS host (`http://host:port` reaches an emulator)."""

    name = "rrsa"
    refreshable = True
    remote = True

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
        self._make()  # the library checks its arguments here: a mistake fails at start-up

    async def fetch(self) -> Credentials:
        try:
            fetched = await self._make().get_credentials_async()
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
        try:
            when = datetime.fromtimestamp(expiration, timezone.utc) if expiration else None
        except (OverflowError, OSError, ValueError):
            raise CredentialsUnavailable(
                "InvalidExpiration", "AssumeRoleWithOIDC answered an unusable Expiration"
            ) from None
        return Credentials(
            fetched.get_access_key_id(),
            fetched.get_access_key_secret(),
            fetched.get_security_token(),
            when,
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


def refresh_after(fetched_at: float, expiration: datetime | None) -> float | None:
    """When (epoch seconds) to fetch expiring credentials again: `min(REFRESH_MARGIN_SECONDS,
    lifetime / 3)` before `expiration`, at least MIN_REFRESH_SECONDS after `fetched_at`; None
    for credentials without an expiry."""
    if expiration is None:
        return None
    expires = expiration.timestamp()
    lifetime = max(0.0, expires - fetched_at)
    margin = min(REFRESH_MARGIN_SECONDS, lifetime / 3)
    return max(fetched_at + MIN_REFRESH_SECONDS, expires - margin)


class RefreshingCredentials(CredentialsProvider):
    """The SDK's credentials provider: cached credentials, refreshed by `run()` in the background.

    `get_credentials()` never does I/O (the SDK calls it on the event loop for every request); it
    returns None before the first successful fetch, which the SDK reports as empty credentials.
    `generation` counts the distinct credentials loaded (an uploader notes it before a PUT).
    `clock` gives epoch seconds; the intervals are arguments so tests run them short.
    """

    def __init__(
        self,
        source: CredentialsSource,
        logger: logging.Logger,
        *,
        clock=time.time,
        poll_seconds: float = FILE_POLL_SECONDS,
        probation_seconds: float = PROBATION_SECONDS,
        refetch_seconds: float = REFETCH_SECONDS,
    ) -> None:
        self.source = source
        self._logger = logger
        self._clock = clock
        self._poll = poll_seconds
        self._probation_after = probation_seconds
        self._refetch = refetch_seconds
        self._current: Credentials | None = None
        self.generation = 0
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._refresh_at: float | None = None
        self._last_refetch = float("-inf")
        self._auth_failures = 0
        self._last_refusal = 0.0
        self._refresh_failures = 0  # fetches that failed in a row
        self._probation = False
        self._announced: str | None = None  # the failing code logged, until "recovered"
        self.failing_code: str | None = None  # set while not ready for credentials' sake

    # ---- the SDK side

    def get_credentials(self) -> Credentials | None:
        return self._current

    @property
    def ready(self) -> bool:
        """False while authentication is failing, before the first fetch, and while the cached
        credentials are past their Expiration."""
        return (
            self._current is not None
            and self.failing_code is None
            and not self._expired(self._current)
        )

    # ---- what the uploader reports

    async def refused(self, code: str, generation: int) -> bool:
        """OSS refused a PUT signed with credentials of `generation` (code in AUTH_ERROR_CODES).
        Counts it (until a success: a fresh key refused too keeps counting), fetches fresh
        credentials when allowed (single-flight; a file at once, an STS exchange at most once per
        `refetch_seconds`), turns failing when the refused credentials are still the current
        ones after that, and returns True when the credentials now differ from the refused ones:
        the caller may try once more."""
        self._auth_failures += 1
        self._last_refusal = self._clock()
        probe_failed = self._probation and generation == self.generation
        if generation == self.generation:
            await self._refetch_after_refusal(generation)
        if generation != self.generation:
            return self._current is not None
        if probe_failed or self._auth_failures >= FAILURES_BEFORE_UNREADY:
            self._probation = False
            self._fail(code)
        return False

    def auth_failed(self, code: str) -> None:
        """`refused` for a caller that cannot wait (no fetch, no retry): counts a refusal of the
        current credentials; the background task fetches as scheduled."""
        self._auth_failures += 1
        self._last_refusal = self._clock()
        if self._probation or self._auth_failures >= FAILURES_BEFORE_UNREADY:
            self._probation = False
            self._fail(code)

    def refusal_retryable(self, code: str) -> bool:
        """True when an auth refusal is the pod's state, not the event's: clock skew, expired
        credentials, or a provider that is not ready (another pod, or later, will store it)."""
        current = self._current
        return (
            code in POD_STATE_CODES
            or not self.ready
            or (current is not None and self._expired(current))
        )

    def succeeded(self) -> None:
        self._auth_failures = 0
        self._probation = False
        if self.failing_code is not None and self.failing_code != "CredentialsExpired":
            self.failing_code = None
        if self.failing_code is None and self._announced is not None:
            self._log_recovered()

    async def _refetch_after_refusal(self, generation: int) -> None:
        if not self.source.refreshable:
            return
        async with self._lock:
            if generation != self.generation:
                return  # another refusal's fetch already brought new credentials
            if self.source.remote and self._clock() - self._last_refetch < self._refetch:
                return
            self._last_refetch = self._clock()
            await self._refresh_locked()

    # ---- the background side

    async def refresh(self) -> bool:
        """Fetch once (single-flight); True when the credentials changed."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> bool:
        now = self._clock()
        try:
            fetched = await self.source.fetch()
        except CredentialsUnavailable as error:
            self._refresh_failures += 1
            if self._current is None or self._expired(self._current):
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
        if self._refresh_failures and self._current is not None:
            log_fields(
                self._logger,
                logging.INFO,
                "credentials refresh works again",
                source=self.source.name,
            )
        self._refresh_failures = 0
        self._refresh_at = refresh_after(now, fetched.expiration) if self.source.remote else None
        changed = self._current is None or _identity(fetched) != _identity(self._current)
        self._current = fetched
        if changed:
            self.generation += 1
            log_fields(
                self._logger,
                logging.INFO,
                "credentials loaded",
                source=self.source.name,
                access_key_id=_masked(fetched.access_key_id),
                expires=fetched.expiration.isoformat() if fetched.expiration else None,
            )
        if self._expired(fetched):
            self._fail("CredentialsExpired", detail="the source's credentials are past Expiration")
        elif self.failing_code is not None and (
            changed or self.failing_code not in AUTH_ERROR_CODES
        ):
            # New credentials after refusals: on probation. Valid ones after expiry or a failed
            # fetch (an extended Expiration counts): ready.
            self._readmit(fresh=True)
        return changed

    async def run(self) -> None:
        """Refresh until cancelled (after a first `refresh()`): a file every `poll_seconds`; an
        STS exchange at its scheduled time, with backoff after failures and at once when a
        refusal asked; and the re-check of a failing provider. Never ends on an error: one is
        logged and the loop goes on."""
        backoff = 0
        last_error: str | None = None
        while True:
            delay = self._next_delay(backoff)
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            try:
                await self._tick()
                last_error = None
            except Exception as error:  # a bug here must not end refreshing silently
                if type(error).__name__ != last_error:  # once per kind, not every poll
                    log_fields(
                        self._logger,
                        logging.ERROR,
                        "credentials refresh error",
                        source=self.source.name,
                        error=type(error).__name__,
                    )
                last_error = type(error).__name__
                self._refresh_failures += 1
            backoff = backoff + 1 if self.source.remote and self._refresh_failures else 0

    async def _tick(self) -> None:
        now = self._clock()
        due = self.source.refreshable and (
            not self.source.remote
            or self._current is None
            or self._refresh_failures > 0
            or (self._refresh_at is not None and now >= self._refresh_at)
        )
        if due:
            await self.refresh()
        current = self._current
        if current is not None and self._expired(current) and self.failing_code is None:
            self._fail("CredentialsExpired", detail="past Expiration and no newer credentials")
        if self._refusal_failing() and self._clock() - self._last_refusal >= self._probation_after:
            if self.source.remote:
                generation = self.generation
                await self._refetch_after_refusal(generation)
            if self.failing_code is not None:
                self._readmit(fresh=False)

    def _next_delay(self, backoff: int) -> float:
        candidates = []
        now = self._clock()
        if self.source.refreshable and not self.source.remote:
            candidates.append(self._poll)
        if self.source.remote and self._refresh_failures:
            step = min(max(backoff, 1), len(RETRY_SECONDS)) - 1
            candidates.append(RETRY_SECONDS[step])
        elif self.source.remote and self._refresh_at is not None:
            candidates.append(self._refresh_at - now)
        if self._refusal_failing():
            candidates.append(self._last_refusal + self._probation_after - now)
        current = self._current
        if current is not None and current.expiration is not None and self.failing_code is None:
            candidates.append(current.expiration.timestamp() - now)
        if not candidates:
            return 300.0
        return min(300.0, max(0.05, min(candidates)))

    def _refusal_failing(self) -> bool:
        return (
            self.failing_code is not None
            and self._current is not None
            and (self.failing_code in AUTH_ERROR_CODES)
        )

    def _expired(self, credentials: Credentials) -> bool:
        expiration = credentials.expiration
        return expiration is not None and expiration.timestamp() <= self._clock()

    def _readmit(self, *, fresh: bool) -> None:
        """Ready again. After refusals without proof (on probation: the next event's PUT is the
        probe); after expiry or a failed fetch, fresh valid credentials are the proof."""
        probation = self.failing_code in AUTH_ERROR_CODES
        self.failing_code = None
        self._probation = probation
        self._last_refusal = self._clock()
        if probation:
            log_fields(
                self._logger,
                logging.DEBUG,
                "credentials on probation: ready, the next upload tests them",
                source=self.source.name,
                fresh=fresh,
            )
        else:
            self._log_recovered()

    def _fail(self, code: str, detail: str | None = None) -> None:
        if self.failing_code is not None:
            return
        self.failing_code = code
        self._wake.set()  # the background loop re-plans: re-check and expiry times changed
        if self._announced == code:
            return  # a failed probe: same state for the operator, no new line
        self._announced = code
        log_fields(
            self._logger,
            logging.ERROR,
            "authentication failing; not ready until credentials work again",
            source=self.source.name,
            code=code,
            reason=detail,
            access_key_id=_masked(self._current.access_key_id) if self._current else None,
        )

    def _log_recovered(self) -> None:
        if self._announced is None:
            return
        log_fields(
            self._logger,
            logging.INFO,
            "authentication recovered",
            source=self.source.name,
            code=self._announced,
        )
        self._announced = None


def _identity(credentials: Credentials) -> tuple[str, str, str | None]:
    return credentials.access_key_id, credentials.access_key_secret, credentials.security_token


def _masked(access_key_id: str) -> str:
    return "..." + access_key_id[-4:]
