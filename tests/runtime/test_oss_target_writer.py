"""The OSS writer's parts: the SDK's exceptions classified, CRC-64 identical to the references,
the SDK configuration, the proxy, and a refused connection reported as such (issue 11)."""

from __future__ import annotations

import asyncio
import logging
import random
import socket

import aiohttp
import crcmod
import oss2.utils
import pytest
from alibabacloud_oss_v2 import exceptions as oss_errors

from runtime.alibaba_oss_target.credentials import RefreshingCredentials, StaticSource
from runtime.alibaba_oss_target.errors import classify
from runtime.alibaba_oss_target.settings import TargetSettings
from runtime.alibaba_oss_target.writer import (
    UPLOAD_SLICE_BYTES,
    OssWriter,
    arriving_slice_bytes,
    crc64_ecma,
    make_config,
    proxy_for,
)
from tests.fakes.objectstore import ObjectStoreEmulator
from tests.fakes.objectstore import crc64_ecma as emulator_crc64

LOG = logging.getLogger("test")


def service_error(status, code, request_id="RID"):
    error = oss_errors.ServiceError(
        status_code=status,
        code=code,
        message="m",
        request_id=request_id,
        ec="",
        timestamp="",
        request_target="PUT http://host/b/k?secret-in-target",
        snapshot=b"",
        headers={},
        error_fileds={},
    )
    return oss_errors.OperationError(name="PutObject", error=error)


def request_error(cause):
    return oss_errors.OperationError(name="PutObject", error=oss_errors.RequestError(error=cause))


def response_error(cause):
    return oss_errors.OperationError(name="PutObject", error=oss_errors.ResponseError(error=cause))


def connector_error(os_error):
    key = aiohttp.client_reqrep.ConnectionKey("h", 80, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, os_error)


@pytest.mark.parametrize(
    ("error", "retryable", "reason", "code"),
    [
        (service_error(503, "SlowDown"), True, "throttled", "SlowDown"),
        (service_error(500, "InternalError"), True, "server-error", "InternalError"),
        (service_error(502, "BadErrorResponse"), True, "server-error", "HTTP502"),
        (service_error(503, ""), True, "server-error", "HTTP503"),
        (service_error(429, "TooManyRequests"), True, "throttled", "TooManyRequests"),
        (service_error(400, "RequestTimeout"), True, "throttled", "RequestTimeout"),
        (service_error(403, "AccessDenied"), False, "access-denied", "AccessDenied"),
        (service_error(404, "NoSuchBucket"), False, "no-such-bucket", "NoSuchBucket"),
        (
            service_error(403, "InvalidAccessKeyId"),
            False,
            "invalid-access-key",
            "InvalidAccessKeyId",
        ),
        (
            service_error(403, "SignatureDoesNotMatch"),
            False,
            "signature-mismatch",
            "SignatureDoesNotMatch",
        ),
        (
            service_error(403, "SecurityTokenExpired"),
            False,
            "security-token-expired",
            "SecurityTokenExpired",
        ),
        (service_error(400, "InvalidArgument"), False, "client-error", "InvalidArgument"),
        (
            request_error(connector_error(ConnectionRefusedError(111, "refused"))),
            True,
            "connection-refused",
            "RequestError",
        ),
        (
            request_error(connector_error(socket.gaierror(-2, "Name or service not known"))),
            True,
            "dns",
            "RequestError",
        ),
        (
            request_error(aiohttp.ServerDisconnectedError()),
            True,
            "connection",
            "RequestError",
        ),
        (
            request_error(aiohttp.ClientOSError(104, "reset")),
            True,
            "connection",
            "RequestError",
        ),
        (response_error(asyncio.TimeoutError()), True, "timeout", "ResponseError"),
        (
            response_error(aiohttp.ConnectionTimeoutError("connect")),
            True,
            "timeout",
            "ResponseError",
        ),
        (
            oss_errors.OperationError(
                name="PutObject", error=oss_errors.InconsistentError(client_crc=1, server_crc=2)
            ),
            True,
            "integrity",
            "InconsistentError",
        ),
        (
            oss_errors.OperationError(name="PutObject", error=oss_errors.CredentialsEmptyError()),
            True,
            "no-credentials",
            "CredentialsEmptyError",
        ),
        (RuntimeError("?"), True, "unexpected", "RuntimeError"),
    ],
)
def test_classify_the_sdks_exceptions(error, retryable, reason, code):
    failure = classify(error)
    assert (failure.retryable, failure.reason, failure.code) == (retryable, reason, code)


def test_classify_keeps_status_and_request_id_only():
    failure = classify(service_error(403, "AccessDenied", "RID-9"))
    assert failure.to_json() == {
        "code": "AccessDenied",
        "reason": "access-denied",
        "status": 403,
        "requestId": "RID-9",
    }


# ---- CRC-64


@pytest.mark.parametrize("size", [0, 1, 7, 8, 1000, 4096, 65537, 1 << 20, (8 << 20) + 3])
def test_crc64_is_identical_to_crcmod_and_oss2(size):
    """The target's fastcrc and the emulator's anycrc against crcmod (oss2's) and oss2 itself."""
    data = random.Random(size).randbytes(size)
    reference = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
    assert crc64_ecma(data) == reference(data)
    assert emulator_crc64(data) == reference(data)
    if size <= 65537:  # oss2's pure-Python fallback is slow; the small sizes suffice
        oss2_crc = oss2.utils.Crc64()
        oss2_crc.update(data)
        assert crc64_ecma(data) == oss2_crc.crc


# ---- configuration


def settings(**changes):
    base = {"endpoint": "https://oss-cn-hangzhou.aliyuncs.com", "bucket": "b-1"}
    return TargetSettings(**{**base, "access_key_id": "ak", "access_key_secret": "sk", **changes})


@pytest.mark.parametrize(("changes", "version"), [({}, "v1"), ({"region": "cn-hangzhou"}, "v4")])
def test_v4_signing_with_a_region_v1_without(changes, version):
    credentials = RefreshingCredentials(StaticSource("ak", "sk"), LOG)
    config = make_config(settings(**changes), credentials)
    assert config.signature_version == version
    assert config.retry_max_attempts == 1  # the uploader retries, within its budget
    assert config.disable_upload_crc64_check is True  # the writer checks, with fastcrc


@pytest.mark.parametrize(
    ("environ", "endpoint", "proxy"),
    [
        ({}, "https://oss-cn-hangzhou.aliyuncs.com", None),
        (
            {"https_proxy": "http://proxy:3128"},
            "https://oss-cn-hangzhou.aliyuncs.com",
            "http://proxy:3128",
        ),
        ({"https_proxy": "http://proxy:3128"}, "http://127.0.0.1:9000", None),
        (
            {"http_proxy": "http://proxy:3128", "no_proxy": "127.0.0.1"},
            "http://127.0.0.1:9000",
            None,
        ),
        ({"http_proxy": "http://proxy:3128"}, "http://oss.internal:80", "http://proxy:3128"),
    ],
)
def test_proxy_is_resolved_once_from_the_environment(monkeypatch, environ, endpoint, proxy):
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(endpoint) == proxy


# ---- against the emulator


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def put_once(endpoint, key, body, **changes):
    credentials = RefreshingCredentials(StaticSource("test-ak", "test-sk"), LOG)
    await credentials.refresh()
    writer = OssWriter(settings(endpoint=endpoint, bucket="test-bucket", **changes), credentials)
    try:
        return await writer.put(key, body, {"Content-Type": "text/plain", "x-oss-meta-ce-id": "1"})
    finally:
        await writer.close()


def test_a_refused_connection_is_reported_as_such():
    with pytest.raises(Exception) as caught:
        asyncio.run(put_once(f"http://127.0.0.1:{free_port()}", "k", b"x", timeout_seconds=2))
    failure = classify(caught.value)
    assert (failure.reason, failure.retryable) == ("connection-refused", True)


@pytest.mark.parametrize("region", [None, "cn-hangzhou"])
def test_the_sdk_request_is_verified_by_the_emulator(region):
    with ObjectStoreEmulator() as store:
        result = asyncio.run(put_once(store.endpoint, "a b/ü", b"hello", region=region))
        stored = store.get("test-bucket", "a b/ü")
    assert stored.body == b"hello"
    assert stored.content_type == "text/plain"
    assert stored.metadata == {"ce-id": "1"}
    assert result.etag == stored.etag  # unquoted, like oss2's
    assert result.request_id


def test_a_wrong_crc_from_oss_raises_the_sdks_inconsistent_error():
    with ObjectStoreEmulator() as store:
        store.corrupt_crc_next()
        with pytest.raises(oss_errors.InconsistentError):
            asyncio.run(put_once(store.endpoint, "k", b"body"))


# ---- large bodies: sent as slices, CRC-64 computed slice by slice

SLICE = UPLOAD_SLICE_BYTES


@pytest.mark.parametrize("size", [SLICE - 1, SLICE, SLICE + 1, 3 * SLICE + 7])
@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_bodies_of_every_size_and_buffer_type_are_stored_exactly(size, kind):
    data = random.Random(size).randbytes(size)
    with ObjectStoreEmulator() as store:
        result = asyncio.run(put_once(store.endpoint, "big", kind(data), region="cn-hangzhou"))
        stored = store.get("test-bucket", "big")
    assert stored.body == data  # and the emulator's CRC-64 matched the writer's, or it raised
    assert result.etag == stored.etag


def test_a_wrong_crc_for_a_sliced_body_raises_the_sdks_inconsistent_error():
    with ObjectStoreEmulator() as store:
        store.corrupt_crc_next()
        with pytest.raises(oss_errors.InconsistentError):
            asyncio.run(put_once(store.endpoint, "k", bytearray(3 * SLICE + 1)))


def test_a_sliced_body_goes_out_with_its_content_length_not_chunked():
    """Real OSS takes both, but a Content-Length lets it refuse a short body; the answer carries
    the CRC-64 of what arrived, as OSS's does."""
    from aiohttp import web

    reference = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
    seen = {}

    async def put(request: web.Request) -> web.Response:
        seen["headers"] = dict(request.headers)
        seen["body"] = await request.read()
        crc = str(reference(seen["body"]))
        return web.Response(headers={"ETag": '"E"', "x-oss-hash-crc64ecma": crc})

    async def main(data: bytes):
        app = web.Application(client_max_size=len(data) + 1)
        app.router.add_put("/{tail:.*}", put)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            return await put_once(f"http://127.0.0.1:{port}", "k", data)
        finally:
            await runner.cleanup()

    data = random.Random(5).randbytes(2 * SLICE + 3)
    assert asyncio.run(main(data)).etag == "E"
    assert seen["body"] == data
    assert seen["headers"]["Content-Length"] == str(len(data))
    assert "Transfer-Encoding" not in seen["headers"]


@pytest.mark.parametrize(
    ("size", "slice_bytes"),
    [(1, SLICE), (1 << 20, SLICE), (4 << 20, 512 * 1024), (8 << 20, 1 << 20), (64 << 20, 1 << 20)],
)
def test_an_arriving_body_goes_out_in_eighths_between_256_kib_and_1_mib(size, slice_bytes):
    assert arriving_slice_bytes(size) == slice_bytes
