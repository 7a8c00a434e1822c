"""Classifying what went wrong with an upload: retry it (transient) or report it (client error).

The input is what `alibabacloud_oss_v2` raises: `OperationError` wrapping a `ServiceError` (OSS
answered an error: code, status, request id), a `RequestError` (the request did not get through:
aiohttp's connection errors), a `ResponseError` (sent, but no usable answer: timeouts, broken
answers), a credentials error (none fetched yet), or the SDK's `InconsistentError` (the writer's
CRC-64 check). Only the OSS error code, HTTP status and request id are kept: the SDK's exception
text quotes the request target and the server's message, which must not reach responses.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from dataclasses import dataclass

import aiohttp
from alibabacloud_oss_v2 import exceptions as oss_errors

THROTTLING_CODES = frozenset(
    {"SlowDown", "TooManyRequests", "RequestTimeout", "ServiceUnavailable"}
)
# 4xx codes worth a reason label of their own; any other 4xx is "client-error".
CLIENT_REASONS = {
    "AccessDenied": "access-denied",
    "NoSuchBucket": "no-such-bucket",
    "InvalidAccessKeyId": "invalid-access-key",
    "SignatureDoesNotMatch": "signature-mismatch",
    "SecurityTokenExpired": "security-token-expired",
    "InvalidSecurityToken": "invalid-security-token",
    "RequestTimeTooSkewed": "clock-skew",
}


@dataclass(frozen=True)
class Failure:
    """Why an upload did not happen. `reason` is a metric label; `code` the OSS error code (or
    the SDK's error class when OSS never answered)."""

    retryable: bool
    reason: str
    code: str
    status: int | None = None
    request_id: str = ""

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "reason": self.reason}
        if self.status is not None:
            body["status"] = self.status
        if self.request_id:
            body["requestId"] = self.request_id
        return body


def classify(error: BaseException) -> Failure:
    """SDK exception -> Failure. Reasons: throttled, server-error (5xx, retryable), the
    CLIENT_REASONS and client-error (4xx, not retryable), connection-refused, connection,
    timeout, dns, tls, integrity, no-credentials (all retryable), unexpected (retryable: the
    broker redelivers, nothing is acknowledged)."""
    while isinstance(error, oss_errors.OperationError):
        error = error.unwrap()
    if isinstance(error, oss_errors.InconsistentError):
        return Failure(True, "integrity", "InconsistentError")
    if isinstance(error, oss_errors.ServiceError):
        return _service_failure(error)
    if isinstance(error, (oss_errors.CredentialsEmptyError, oss_errors.CredentialsFetchError)):
        return Failure(True, "no-credentials", type(error).__name__)
    if isinstance(error, (oss_errors.RequestError, oss_errors.ResponseError)):
        return Failure(True, _transport_reason(error.unwrap()), type(error).__name__)
    return Failure(True, "unexpected", type(error).__name__)


def _service_failure(error: oss_errors.ServiceError) -> Failure:
    status = error.status_code if isinstance(error.status_code, int) else None
    code = error.code or f"HTTP{status}"
    if code == "BadErrorResponse":  # no parsable XML: a proxy's or load balancer's answer
        code = f"HTTP{status}"
    request_id = error.request_id or ""
    if code in THROTTLING_CODES or status in (408, 429):
        return Failure(True, "throttled", code, status, request_id)
    if status is None or status >= 500 or status < 400:
        return Failure(True, "server-error", code, status, request_id)
    reason = CLIENT_REASONS.get(code, "client-error")
    return Failure(False, reason, code, status, request_id)


def _transport_reason(cause: BaseException | None) -> str:
    """aiohttp's error under the SDK's RequestError/ResponseError -> a reason label."""
    if isinstance(cause, asyncio.TimeoutError):  # aiohttp's ServerTimeoutError is one too
        return "timeout"
    if isinstance(cause, aiohttp.ClientConnectorError):
        os_error = cause.os_error
        if isinstance(os_error, ConnectionRefusedError):
            return "connection-refused"
        if isinstance(os_error, socket.gaierror) or isinstance(
            cause, getattr(aiohttp, "ClientConnectorDNSError", ())
        ):
            return "dns"
        if isinstance(os_error, ssl.SSLError) or isinstance(
            cause, aiohttp.ClientConnectorCertificateError
        ):
            return "tls"
        if isinstance(os_error, TimeoutError):
            return "timeout"
    return "connection"
