"""Error responses in each vendor's XML format, with the headers the SDKs read.

oss2 builds its exception from the body (or, when the body is empty as for HEAD, from the base64
`x-oss-err` header) and picks the class by (status, Code). qcloud_cos needs Code, Message, Resource
and RequestId all present, otherwise it reports the code as "Unknown".
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

# OSS "EC" values. NoSuchKey's and InvalidAccessKeyId's (STS key without token) come from the vendor
# documentation; the others are emulator-chosen values in the same "dddd-dddddddd" shape, so do not
# assert on them as if they were the service's.
_OSS_EC = {
    "NoSuchKey": "0026-00000001",
    "NoSuchBucket": "0015-00000101",
    "AccessDenied": "0003-00000001",
    "InvalidAccessKeyId": "0002-00000002",
    "InvalidSecurityToken": "0002-00000003",
    "SignatureDoesNotMatch": "0002-00000040",
    "RequestTimeTooSkewed": "0002-00000504",
    "InvalidDigest": "0016-00000101",
    "InvalidArgument": "0016-00000102",
    "SlowDown": "0050-00000001",
    "InternalError": "0050-00000002",
    "NotImplemented": "0050-00000003",
    "MethodNotAllowed": "0050-00000004",
}

DEFAULT_MESSAGES = {
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "SlowDown": "Please reduce your request rate.",
    "InternalError": "We encountered an internal error. Please try again.",
    "ServiceUnavailable": "Please reduce your request rate.",
}


class ServiceError(Exception):
    """A refused request: HTTP `status`, vendor error `code`, extra <Error> `details`."""

    def __init__(self, status: int, code: str, message: str, **details: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details


@dataclass(frozen=True)
class ErrorResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def oss_error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    host: str,
    is_head: bool,
    details: Mapping[str, str] | None = None,
) -> ErrorResponse:
    ec = _OSS_EC.get(code, "0000-00000000")
    elements = [
        ("Code", code),
        ("Message", message),
        ("RequestId", request_id),
        ("HostId", host),
        *(details or {}).items(),
        ("EC", ec),
    ]
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        + "".join(f"  <{name}>{escape(value)}</{name}>\n" for name, value in elements)
        + "</Error>\n"
    ).encode()
    headers = {
        "Content-Type": "application/xml",
        "x-oss-request-id": request_id,
        "x-oss-ec": ec,
        "Server": "AliyunOSS",
    }
    if is_head:
        # HEAD answers carry no body, so OSS puts the whole error document in a header.
        headers["x-oss-err"] = base64.b64encode(xml).decode()
        xml = b""
    return ErrorResponse(status, headers, xml)


def cos_error(
    status: int,
    code: str,
    message: str,
    request_id: str,
    resource: str,
    trace_id: str,
    is_head: bool,
) -> ErrorResponse:
    xml = (
        "<?xml version='1.0' encoding='utf-8' ?>\n<Error>\n"
        f"\t<Code>{escape(code)}</Code>\n"
        f"\t<Message>{escape(message)}</Message>\n"
        f"\t<Resource>{escape(resource)}</Resource>\n"
        f"\t<RequestId>{escape(request_id)}</RequestId>\n"
        f"\t<TraceId>{escape(trace_id)}</TraceId>\n"
        "</Error>\n"
    ).encode()
    headers = {
        "Content-Type": "application/xml",
        "x-cos-request-id": request_id,
        "x-cos-trace-id": trace_id,
        "Server": "tencent-cos",
    }
    return ErrorResponse(status, headers, b"" if is_head else xml)
