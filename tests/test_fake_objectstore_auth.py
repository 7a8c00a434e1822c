"""The emulator's signature verifiers against the SDKs' own signing code (no network)."""

from __future__ import annotations

import dataclasses
import time
from urllib.parse import urlsplit

import oss2
import pytest
import requests
from qcloud_cos import CosConfig
from qcloud_cos.cos_auth import CosS3Auth

from tests.fakes.objectstore_auth import (
    AuthError,
    SignedRequest,
    parse_authorization,
    verify_cos,
    verify_oss_v1,
    verify_oss_v4,
)

AK, SK = "test-ak", "test-sk"
BUCKET = "test-bucket"
KEY = "dir/a b/ü?&=+.json"


def oss2_signed(auth, method="PUT", key=KEY, headers=None, params=None) -> SignedRequest:
    """Let oss2 sign a request, then present it as the server would see it."""
    req = oss2.http.Request(
        method,
        "http://127.0.0.1/",
        headers=headers,
        params=params,
        region="cn-hangzhou",
        product="oss",
    )
    auth._sign_request(req, BUCKET, key)
    lowered = {k.lower(): v for k, v in req.headers.items() if v is not None}
    return SignedRequest(method, BUCKET, key, lowered, list(req.params.items()))


def verify_oss(req: SignedRequest, secret=SK, now=None) -> None:
    auth = parse_authorization(req.headers["authorization"])
    verifier = verify_oss_v4 if auth.scheme == "oss-v4" else verify_oss_v1
    verifier(req, auth, secret, time.time() if now is None else now)


def with_header(req: SignedRequest, name: str, value: str) -> SignedRequest:
    return dataclasses.replace(req, headers={**req.headers, name: value})


OSS_AUTHS = [pytest.param(oss2.Auth(AK, SK), id="v1"), pytest.param(oss2.AuthV4(AK, SK), id="v4")]
META = {"Content-Type": "application/json", "x-oss-meta-ce-type": "com.example"}


@pytest.mark.parametrize("auth", OSS_AUTHS)
@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
def test_oss_request_signed_by_oss2_verifies(auth, method):
    verify_oss(oss2_signed(auth, method, headers=META))


@pytest.mark.parametrize("auth", OSS_AUTHS)
def test_oss_sts_token_header_is_part_of_the_signature(auth):
    sts = oss2.StsAuth(AK, SK, "token-1", "v4" if isinstance(auth, oss2.AuthV4) else "v1")
    req = oss2_signed(sts, headers=META)
    assert req.headers["x-oss-security-token"] == "token-1"
    verify_oss(req)
    with pytest.raises(AuthError) as info:
        verify_oss(with_header(req, "x-oss-security-token", "token-2"))
    assert info.value.code == "SignatureDoesNotMatch"


TAMPERINGS = {
    "wrong secret": lambda r: (r, "other-secret"),
    "other method": lambda r: (dataclasses.replace(r, method="DELETE"), SK),
    "other key": lambda r: (dataclasses.replace(r, key=r.key + "x"), SK),
    "other bucket": lambda r: (dataclasses.replace(r, bucket="other"), SK),
    "content type": lambda r: (with_header(r, "content-type", "text/plain"), SK),
    "metadata": lambda r: (with_header(r, "x-oss-meta-ce-type", "evil"), SK),
    "extra x-oss header": lambda r: (with_header(r, "x-oss-object-acl", "public-read"), SK),
    "content md5": lambda r: (with_header(r, "content-md5", "AAAAAAAAAAAAAAAAAAAAAA=="), SK),
    "sub-resource": lambda r: (dataclasses.replace(r, query=[("acl", "")]), SK),
}


@pytest.mark.parametrize("auth", OSS_AUTHS)
@pytest.mark.parametrize("tamper", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_oss_any_change_to_a_signed_part_breaks_the_signature(auth, tamper):
    req, secret = tamper(oss2_signed(auth, headers=META))
    with pytest.raises(AuthError) as info:
        verify_oss(req, secret)
    assert (info.value.status, info.value.code) == (403, "SignatureDoesNotMatch")
    assert info.value.details["StringToSign"]


def test_oss_v1_ignores_plain_query_parameters_but_v4_signs_them():
    v1 = oss2_signed(oss2.Auth(AK, SK))
    verify_oss(dataclasses.replace(v1, query=[("foo", "bar")]))
    v4 = oss2_signed(oss2.AuthV4(AK, SK))
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        verify_oss(dataclasses.replace(v4, query=[("foo", "bar")]))


@pytest.mark.parametrize("auth", OSS_AUTHS)
def test_oss_v4_and_v1_sign_query_parameters_they_send(auth):
    params = {"response-content-type": "text/plain", "x-oss-process": "image/resize,w_10"}
    verify_oss(oss2_signed(auth, "GET", params=params))


@pytest.mark.parametrize("auth", OSS_AUTHS)
@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
def test_oss_clock_skew_beyond_15_minutes_is_refused(auth, offset):
    req = oss2_signed(auth)
    verify_oss(req, now=time.time() + 14 * 60 * (1 if offset > 0 else -1))
    with pytest.raises(AuthError) as info:
        verify_oss(req, now=time.time() + offset)
    assert info.value.code == "RequestTimeTooSkewed"


def test_oss_v4_scope_must_match_the_request_date_and_product():
    req = oss2_signed(oss2.AuthV4(AK, SK))
    bad = req.headers["authorization"].replace("/oss/", "/ecs/")
    with pytest.raises(AuthError, match="AccessDenied"):
        verify_oss(with_header(req, "authorization", bad))


def test_oss_v4_region_is_part_of_the_key():
    req = oss2_signed(oss2.AuthV4(AK, SK))
    moved = req.headers["authorization"].replace("/cn-hangzhou/", "/cn-beijing/")
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        verify_oss(with_header(req, "authorization", moved))


def test_oss_v4_additional_headers_are_signed():
    req = oss2.http.Request(
        "GET",
        "http://127.0.0.1/",
        headers={"Host": "127.0.0.1:1", "Range": "bytes=0-1"},
        region="cn-hangzhou",
        product="oss",
    )
    oss2.AuthV4(AK, SK)._sign_request(req, BUCKET, KEY, in_additional_headers=["host", "range"])
    lowered = {k.lower(): v for k, v in req.headers.items() if v is not None}
    signed = SignedRequest("GET", BUCKET, KEY, lowered)
    assert "AdditionalHeaders=host;range" in lowered["authorization"]
    verify_oss(signed)
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        verify_oss(with_header(signed, "range", "bytes=0-9"))


def test_oss_v4_declared_payload_hash_is_checked_against_the_body():
    req = oss2_signed(oss2.AuthV4(AK, SK))
    declared = "0" * 64
    with pytest.raises(AuthError) as info:
        verify_oss(
            dataclasses.replace(
                with_header(req, "x-oss-content-sha256", declared), body_sha256="1" * 64
            )
        )
    assert info.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "Bearer abc",
        "OSS test-ak",
        "OSS :sig",
        "OSS4-HMAC-SHA256 Credential=test-ak/20260101, Signature=ab",
        "OSS4-HMAC-SHA256 Signature=ab",
        "q-sign-algorithm=sha1&q-ak=test-ak",
    ],
)
def test_missing_or_garbled_authorization_is_403_access_denied(value):
    with pytest.raises(AuthError) as info:
        parse_authorization(value)
    assert (info.value.status, info.value.code) == (403, "AccessDenied")


# ---------------------------------------------------------------------------------------------
# COS

COS_BUCKET = "examplebucket-1250000000"
COS_HOST = f"{COS_BUCKET}.cos.ap-guangzhou.myqcloud.com"


def cos_signed(method="PUT", key=KEY, headers=None, params=None, body=b"") -> SignedRequest:
    """Let qcloud_cos sign a prepared request the way CosS3Client does in IP+Port mode."""
    conf = CosConfig(Region="ap-guangzhou", SecretId=AK, SecretKey=SK)
    all_headers = {"Host": COS_HOST, **(headers or {})}
    prepared = requests.Request(
        method, "http://127.0.0.1:1/" + key, headers=all_headers, params=params, data=body
    ).prepare()
    CosS3Auth(conf, key, params or {})(prepared)
    lowered = {k.lower(): v for k, v in prepared.headers.items()}
    query = [tuple(p.split("=", 1)) for p in urlsplit(prepared.url).query.split("&") if p]
    query = [(k, requests.utils.unquote(v)) for k, v in query]
    return SignedRequest(method, COS_BUCKET, key, lowered, query)


def verify(req: SignedRequest, secret=SK, now=None) -> None:
    auth = parse_authorization(req.headers["authorization"])
    verify_cos(req, auth, secret, time.time() if now is None else now)


COS_META = {"Content-Type": "application/json", "x-cos-meta-ce-type": "com.example"}


@pytest.mark.parametrize("method", ["PUT", "GET", "HEAD", "DELETE"])
def test_cos_request_signed_by_qcloud_cos_verifies(method):
    body = b"hello" if method == "PUT" else b""
    verify(cos_signed(method, headers=COS_META, body=body))


def test_cos_signed_query_parameters_verify_and_are_checked():
    req = cos_signed("GET", params={"response-content-type": "text/plain"})
    assert "q-url-param-list=response-content-type" in req.headers["authorization"]
    verify(req)
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        verify(dataclasses.replace(req, query=[("response-content-type", "text/html")]))


COS_TAMPERINGS = {
    "wrong secret": lambda r: (r, "other-secret"),
    "other method": lambda r: (dataclasses.replace(r, method="DELETE"), SK),
    "other key": lambda r: (dataclasses.replace(r, key=r.key + "x"), SK),
    "other host": lambda r: (with_header(r, "host", "other-1.cos.ap-guangzhou.myqcloud.com"), SK),
    "content type": lambda r: (with_header(r, "content-type", "text/plain"), SK),
    "metadata": lambda r: (with_header(r, "x-cos-meta-ce-type", "evil"), SK),
}


@pytest.mark.parametrize("tamper", COS_TAMPERINGS.values(), ids=COS_TAMPERINGS.keys())
def test_cos_any_change_to_a_signed_part_breaks_the_signature(tamper):
    req, secret = tamper(cos_signed(headers=COS_META, body=b"x"))
    with pytest.raises(AuthError) as info:
        verify(req, secret)
    assert (info.value.status, info.value.code) == (403, "SignatureDoesNotMatch")


def test_cos_unsigned_extra_header_is_tolerated_but_a_listed_missing_one_is_not():
    req = cos_signed(headers=COS_META, body=b"x")
    verify(with_header(req, "x-cos-acl", "private"))  # not in q-header-list
    headers = {k: v for k, v in req.headers.items() if k != "x-cos-meta-ce-type"}
    with pytest.raises(AuthError, match="SignatureDoesNotMatch"):
        verify(dataclasses.replace(req, headers=headers))


def test_cos_sign_time_window_is_enforced():
    req = cos_signed()
    window = parse_authorization(req.headers["authorization"]).fields["q-sign-time"]
    start, end = (int(x) for x in window.split(";"))
    verify(req, now=end)
    with pytest.raises(AuthError) as expired:
        verify(req, now=end + 1)
    assert (expired.value.code, expired.value.message) == ("AccessDenied", "Request has expired.")
    with pytest.raises(AuthError) as early:
        verify(req, now=start - 1)
    assert early.value.code == "RequestTimeTooSkewed"


def test_cos_only_sha1_and_signable_headers_are_accepted():
    req = cos_signed()
    header = req.headers["authorization"]
    with pytest.raises(AuthError, match="AccessDenied"):
        verify(with_header(req, "authorization", header.replace("=sha1&", "=md5&")))
    forged = header.replace("q-header-list=", "q-header-list=user-agent;")
    with pytest.raises(AuthError, match="may not be signed"):
        verify(with_header(req, "authorization", forged))
