"""Classifying what went wrong with an upload: retry it (transient) or report it (client error).

Only the OSS error code, HTTP status and request id are kept: oss2's exception text can quote
request details (StringToSign, the access key id), which must not reach logs or responses.
"""

from __future__ import annotations

from dataclasses import dataclass

import urllib3
from oss2.exceptions import ClientError, InconsistentError, OssError, RequestError

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
    """Why an upload did not happen. `reason` is a metric label; `code` the OSS error code."""

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
    if isinstance(error, InconsistentError):
        return Failure(True, "integrity", "InconsistentError", None, error.request_id)
    if isinstance(error, RequestError):
        cause = getattr(error, "exception", None)
        timed_out = isinstance(cause, (urllib3.exceptions.TimeoutError, TimeoutError))
        return Failure(True, "timeout" if timed_out else "connection", "RequestError")
    if isinstance(error, ClientError):
        return Failure(False, "client-error", "ClientError")
    if isinstance(error, OssError):
        status = error.status if isinstance(error.status, int) else None
        code = error.code or f"HTTP{status}"
        if code in THROTTLING_CODES or status in (408, 429):
            return Failure(True, "throttled", code, status, error.request_id)
        if status is None or status >= 500 or status < 400:
            return Failure(True, "server-error", code, status, error.request_id)
        reason = CLIENT_REASONS.get(code, "client-error")
        return Failure(False, reason, code, status, error.request_id)
    # Anything unexpected is treated as transient: the broker retries, nothing is acknowledged.
    return Failure(True, "unexpected", type(error).__name__)
