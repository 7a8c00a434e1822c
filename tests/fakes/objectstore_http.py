"""HTTP shell of the object-store emulator: one handler thread per connection, HTTP/1.1 keep-alive.

Request flow for object requests: read the whole body, count it, wait the configured latency, apply
an injected fault (drop or 5xx) if one is due, then bucket -> signature -> operation, like the
services (a missing bucket is reported before the signature is looked at).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import os
import sys
import time
import uuid
from collections.abc import Mapping
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes.objectstore_admin import handle_admin
from tests.fakes.objectstore_auth import (
    AuthError,
    SignedRequest,
    parse_authorization,
    verify_cos,
    verify_oss_v1,
    verify_oss_v4,
)
from tests.fakes.objectstore_errors import DEFAULT_MESSAGES, ServiceError, cos_error, oss_error
from tests.fakes.objectstore_state import StoredObject, crc64_ecma

if TYPE_CHECKING:
    from tests.fakes.objectstore import ObjectStoreEmulator

log = logging.getLogger("tests.fakes.objectstore")

ADMIN_PREFIX = "/_emulator/"
_OBJECT_HEADERS = frozenset(
    [
        "content-type",
        "content-encoding",
        "content-disposition",
        "content-language",
        "cache-control",
        "expires",
    ]
)
# Request headers about the request itself, never kept with the object.
_TRANSIENT = frozenset(
    [
        "x-oss-date",
        "x-oss-content-sha256",
        "x-oss-security-token",
        "x-cos-security-token",
        "x-cos-sdk-retry",
        "x-cos-content-sha1",
    ]
)
_UNSUPPORTED_PARAMS = frozenset(
    [
        "uploads",
        "uploadId",
        "partNumber",
        "acl",
        "tagging",
        "append",
        "position",
        "symlink",
        "restore",
        "versionId",
    ]
)
_HEX = frozenset("0123456789abcdef")


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A burst of 64+ clients connecting at once must not overflow the listen backlog.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], emulator: ObjectStoreEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, EmulatorHandler)

    def handle_error(self, request, client_address) -> None:
        # Clients that give up on a connection (after an error answer, or a timeout) reset it
        # while the handler waits for the next request; that is normal, not worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):
            log.debug("client %s went away: %s", client_address, exc)
            return
        log.exception("emulator failed on a request from %s", client_address)


class RequestBodyError(Exception):
    pass


class EmulatorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ObjectStoreEmulator/1.0"
    sys_version = ""
    # Headers and body go out in separate writes; without TCP_NODELAY, delayed ACKs stall them.
    disable_nagle_algorithm = True
    server: EmulatorHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_PUT = do_HEAD = do_DELETE = do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self) -> None:
        emulator = self.server.emulator
        url = urlsplit(self.path)
        headers = _lower_headers(self.headers.items())
        try:
            body = self._read_body(headers)
        except RequestBodyError as exc:
            emulator.counters.count("incomplete")
            self._send(400, {"Content-Type": "text/plain"}, str(exc).encode())
            self.close_connection = True
            return
        if url.path.startswith(ADMIN_PREFIX) and not _is_virtual_host(headers.get("host", "")):
            status, out_headers, out_body = handle_admin(emulator, self.command, url, body)
            self._send(status, out_headers, out_body)
            return
        if url.path == "/" and "Action=" in (url.query or body.decode("latin-1")[:4096]):
            self._send(*emulator.sts.handle(emulator, url.query, body, os.urandom(12).hex()))
            return
        emulator.counters.request(self.command)
        exchange = Exchange(self.command, url, headers, body, emulator)
        if emulator.fault_plan.latency:
            time.sleep(emulator.fault_plan.latency)
        fault = emulator.fault_plan.next_fault()
        if fault is not None and fault.kind == "drop":
            emulator.counters.count("drops")
            # No answer at all: the server closes the socket once this handler returns.
            self.close_connection = True
            return
        if fault is not None:
            emulator.counters.count("injected")
            message = DEFAULT_MESSAGES.get(fault.code, "Injected fault.")
            self._send(*exchange.error(fault.status, fault.code, message))
            return
        self._send(*exchange.run())

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.log_request(status)
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        if "Server" not in headers:
            self.send_header("Server", self.server_version)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _read_body(self, headers: Mapping[str, str]) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length_text = headers.get("content-length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise RequestBodyError("Content-Length is not a number") from None
        if length < 0:
            raise RequestBodyError("Content-Length is negative")
        parts, remaining = [], length
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                raise RequestBodyError("request body shorter than Content-Length")
            parts.append(chunk)
            remaining -= len(chunk)
        return b"".join(parts)

    def _read_chunked(self) -> bytes:
        parts = []
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise RequestBodyError("malformed chunk size") from None
            if size == 0:
                break
            data = self.rfile.read(size)
            if len(data) != size or self.rfile.read(2) != b"\r\n":
                raise RequestBodyError("truncated chunk")
            parts.append(data)
        while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
            pass  # trailers are not used
        return b"".join(parts)


class Exchange:
    """One object request: routing, authentication and the object operation."""

    def __init__(self, method, url, headers, body, emulator) -> None:
        self.method = method
        self.headers: dict[str, str] = headers
        self.body: bytes = body
        self.emulator = emulator
        self.query = parse_qsl(url.query, keep_blank_values=True)
        self.host = headers.get("host", "")
        self.vendor = _vendor(headers.get("authorization", ""), self.host)
        self.request_id = os.urandom(12).hex().upper()
        if self.vendor == "oss":
            bucket, _, key = url.path.lstrip("/").partition("/")
            self.bucket, self.key = unquote(bucket), unquote(key)
        else:
            self.bucket, self.key = self.host.split(".", 1)[0], unquote(url.path.lstrip("/"))

    def run(self) -> tuple[int, dict[str, str], bytes]:
        try:
            return self._run()
        except ServiceError as exc:
            return self.error(exc.status, exc.code, exc.message, exc.details)

    def _run(self) -> tuple[int, dict[str, str], bytes]:
        store = self.emulator
        if not self.bucket or not store.table.has_bucket(self.bucket):
            raise ServiceError(
                404, "NoSuchBucket", DEFAULT_MESSAGES["NoSuchBucket"], BucketName=self.bucket
            )
        self._authenticate()
        unsupported = sorted({k for k, _ in self.query} & _UNSUPPORTED_PARAMS)
        if unsupported or not self.key:
            what = ", ".join(unsupported) or "bucket-level operations"
            raise ServiceError(501, "NotImplemented", f"The emulator does not implement {what}.")
        operation = {"PUT": self._put, "GET": self._get, "HEAD": self._get, "DELETE": self._delete}
        if self.method not in operation:
            raise ServiceError(405, "MethodNotAllowed", f"{self.method} is not allowed on objects.")
        return operation[self.method]()

    def _authenticate(self) -> None:
        store = self.emulator
        auth = parse_authorization(self.headers.get("authorization"))
        secret = store.credentials.get(auth.access_key_id)
        token_header = "x-cos-security-token" if self.vendor == "cos" else "x-oss-security-token"
        sent_token = self.headers.get(token_header)
        required_token = store.security_tokens.get(auth.access_key_id)
        if secret is None or (required_token is None) != (sent_token is None):
            # The service looks a key up among STS keys exactly when a token is sent, so an STS key
            # without its token (or a long-term key with one) is as unknown as a made-up key.
            raise AuthError(
                403,
                "InvalidAccessKeyId",
                "The Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=auth.access_key_id,
            )
        if sent_token is not None and sent_token != required_token:
            raise AuthError(403, "InvalidSecurityToken", "The security token is invalid.")
        if store.sts.expired(auth.access_key_id):
            raise AuthError(
                403, "SecurityTokenExpired", "The security token you provided has expired."
            )
        body_sha256 = None
        declared = self.headers.get("x-oss-content-sha256", "")
        if len(declared) == 64 and set(declared) <= _HEX:
            body_sha256 = hashlib.sha256(self.body).hexdigest()
        request = SignedRequest(
            self.method, self.bucket, self.key, self.headers, self.query, body_sha256
        )
        verify = {"oss-v1": verify_oss_v1, "oss-v4": verify_oss_v4, "cos": verify_cos}
        verify[auth.scheme](request, auth, secret, store.clock())

    def _put(self) -> tuple[int, dict[str, str], bytes]:
        md5 = hashlib.md5(self.body)
        sent_md5 = self.headers.get("content-md5")
        if sent_md5 is not None and sent_md5 != base64.b64encode(md5.digest()).decode():
            raise ServiceError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        store = self.emulator
        etag = md5.hexdigest().upper() if self.vendor == "oss" else md5.hexdigest()
        prefix = f"x-{self.vendor}-meta-"
        kept = {
            k: v
            for k, v in self.headers.items()
            if k in _OBJECT_HEADERS or (k.startswith(f"x-{self.vendor}-") and k not in _TRANSIENT)
        }
        crc = crc64_ecma(self.body)
        stored = StoredObject(
            body=self.body,
            content_type=self.headers.get("content-type"),
            metadata={k[len(prefix) :]: v for k, v in kept.items() if k.startswith(prefix)},
            etag=etag,
            headers=kept,
            crc64=crc,
            last_modified=time.time(),
            vendor=self.vendor,
        )
        store.table.put(self.bucket, self.key, stored)
        store.counters.count("stored")
        if store.fault_plan.take_crc_corruption():
            crc = (crc + 1) & 0xFFFFFFFFFFFFFFFF
        headers = self._common_headers()
        headers.update({"ETag": f'"{etag}"', f"x-{self.vendor}-hash-crc64ecma": str(crc)})
        if self.vendor == "oss":
            headers["Content-MD5"] = base64.b64encode(md5.digest()).decode()
        return 200, headers, b""

    def _get(self) -> tuple[int, dict[str, str], bytes]:
        store = self.emulator
        obj = store.table.get(self.bucket, self.key)
        if obj is None:
            raise ServiceError(404, "NoSuchKey", DEFAULT_MESSAGES["NoSuchKey"], Key=self.key)
        store.counters.count("fetched")
        headers = self._common_headers()
        for name, value in obj.headers.items():
            # Standard headers go out as Cache-Control etc.; x-oss-/x-cos- ones stay lower-case.
            headers[_canonical_case(name) if name in _OBJECT_HEADERS else name] = value
        headers.setdefault("Content-Type", "application/octet-stream")
        for name, value in self.query:
            if name == "response-content-type":
                headers["Content-Type"] = value
        headers.update(
            {
                "Content-Length": str(len(obj.body)),
                "ETag": f'"{obj.etag}"',
                "Last-Modified": formatdate(obj.last_modified, usegmt=True),
                f"x-{self.vendor}-hash-crc64ecma": str(obj.crc64),
                "Accept-Ranges": "bytes",
            }
        )
        if self.vendor == "oss":
            headers.update({"x-oss-object-type": "Normal", "x-oss-storage-class": "Standard"})
        return 200, headers, b"" if self.method == "HEAD" else obj.body

    def _delete(self) -> tuple[int, dict[str, str], bytes]:
        # Both services answer 204 whether or not the key existed.
        if self.emulator.table.delete(self.bucket, self.key):
            self.emulator.counters.count("deleted")
        return 204, self._common_headers(), b""

    def _common_headers(self) -> dict[str, str]:
        if self.vendor == "oss":
            return {"x-oss-request-id": self.request_id, "Server": "AliyunOSS"}
        return {"x-cos-request-id": self.request_id, "Server": "tencent-cos"}

    def error(self, status, code, message, details=None) -> tuple[int, dict[str, str], bytes]:
        self.emulator.counters.error(code)
        is_head = self.method == "HEAD"
        if self.vendor == "oss":
            response = oss_error(
                status, code, message, self.request_id, self.host, is_head, details
            )
        else:
            resource = f"{self.host}/{self.key}"
            trace = base64.b64encode(uuid.uuid4().bytes).decode()
            response = cos_error(status, code, message, self.request_id, resource, trace, is_head)
        if is_head:
            response.headers["Content-Length"] = "0"
        return response.status, response.headers, response.body


def _vendor(authorization: str, host: str) -> str:
    if authorization.startswith("q-sign-algorithm="):
        return "cos"
    if authorization.startswith("OSS"):
        return "oss"
    return "cos" if _is_virtual_host(host) else "oss"


def _is_virtual_host(host: str) -> bool:
    """True for `<bucket>.cos.<region>.myqcloud.com`-style hosts, false for 127.0.0.1:port."""
    try:
        name = urlsplit("//" + host).hostname or ""
    except ValueError:
        return False
    if not name or name == "localhost":
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return "." in name
    return False


def _canonical_case(name: str) -> str:
    return "-".join(part.capitalize() for part in name.split("-"))


def _lower_headers(items) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in items:
        key = name.lower()
        value = _wire_text(value.strip())
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def _wire_text(value: str) -> str:
    """http.server decodes header bytes as Latin-1; SDKs sign the UTF-8 text they sent."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value
