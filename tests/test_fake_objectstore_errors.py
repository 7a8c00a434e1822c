"""The emulator's error documents, fed straight into the SDKs' own error parsers."""

from __future__ import annotations

import io

import oss2
import pytest
from qcloud_cos.cos_exception import CosServiceError

from tests.fakes.objectstore_errors import cos_error, oss_error


class FakeOssResponse:
    """The slice of oss2.http.Response that oss2.exceptions.make_exception reads."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self._body = io.BytesIO(body)

    def read(self, amount=None):
        return self._body.read(amount)


OSS_CASES = [
    (403, "SignatureDoesNotMatch", oss2.exceptions.SignatureDoesNotMatch),
    (403, "AccessDenied", oss2.exceptions.AccessDenied),
    (403, "InvalidAccessKeyId", oss2.exceptions.ServerError),
    (404, "NoSuchBucket", oss2.exceptions.NoSuchBucket),
    (404, "NoSuchKey", oss2.exceptions.NoSuchKey),
    (400, "InvalidDigest", oss2.exceptions.InvalidDigest),
    (503, "SlowDown", oss2.exceptions.ServerError),
    (500, "InternalError", oss2.exceptions.ServerError),
]


@pytest.mark.parametrize("is_head", [False, True], ids=["with-body", "head"])
@pytest.mark.parametrize(("status", "code", "klass"), OSS_CASES)
def test_oss2_maps_each_error_to_its_class(status, code, klass, is_head):
    response = oss_error(status, code, "msg <&>", "RID123", "host", is_head, {"Key": "a&b"})
    exc = oss2.exceptions.make_exception(FakeOssResponse(status, response.headers, response.body))
    assert type(exc) is klass
    assert (exc.status, exc.code, exc.message, exc.request_id) == (
        status,
        code,
        "msg <&>",
        "RID123",
    )
    assert exc.details["Key"] == "a&b"
    assert exc.ec == response.headers["x-oss-ec"]
    assert (response.body == b"") is is_head


@pytest.mark.parametrize(
    ("status", "code"), [(403, "SignatureDoesNotMatch"), (404, "NoSuchKey"), (503, "SlowDown")]
)
def test_qcloud_cos_reads_every_field(status, code):
    response = cos_error(status, code, "msg <&>", "RID", "bucket-1.cos/k", "TRACE", False)
    exc = CosServiceError("GET", response.body.decode(), status)
    assert exc.get_error_code() == code
    assert exc.get_error_msg() == "msg <&>"
    assert exc.get_request_id() == "RID"
    assert exc.get_trace_id() == "TRACE"
    assert exc.get_resource_location() == "bucket-1.cos/k"
    assert response.headers["x-cos-request-id"] == "RID"
