"""oss2 (V1, V4, STS) and qcloud_cos against the emulator: round-trips and the errors they raise."""

from __future__ import annotations

import time

import oss2
import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from tests.fakes.objectstore import ObjectStoreEmulator

AK, SK = "test-ak", "test-sk"
STS_AK, STS_SK, STS_TOKEN = "STS.sts-ak", "sts-sk", "sts-token-value"
OSS_BUCKET = "test-bucket"
COS_BUCKET = "examplebucket-1250000000"
REGION = "cn-hangzhou"
KEYS = ["evt-0001", "dir/sub/evt.json", "a b/ü?&=+.json", "日本/データ 1"]


@pytest.fixture(scope="module")
def store():
    with ObjectStoreEmulator(
        credentials={AK: SK, STS_AK: STS_SK},
        security_tokens={STS_AK: STS_TOKEN},
        buckets=[OSS_BUCKET, COS_BUCKET],
    ) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh(store):
    store.reset()


def oss_bucket(store, auth_kind="v1", ak=AK, sk=SK, bucket=OSS_BUCKET):
    if auth_kind == "v4":
        return oss2.Bucket(oss2.AuthV4(ak, sk), store.endpoint, bucket, region=REGION)
    return oss2.Bucket(oss2.Auth(ak, sk), store.endpoint, bucket)


def cos_client(store, ak=AK, sk=SK, token=None):
    conf = CosConfig(
        Region="ap-guangzhou",
        SecretId=ak,
        SecretKey=sk,
        Token=token,
        Scheme="http",
        IP="127.0.0.1",
        Port=store.port,
    )
    return CosS3Client(conf, retry=0)


# ---------------------------------------------------------------------------------------------
# oss2


@pytest.mark.parametrize("auth_kind", ["v1", "v4"])
@pytest.mark.parametrize("key", KEYS)
def test_oss2_put_get_head_delete_round_trip(store, auth_kind, key):
    bucket = oss_bucket(store, auth_kind)
    body = f"payload for {key}".encode()
    headers = {"Content-Type": "application/cloudevents+json", "x-oss-meta-ce-type": "com.example"}

    result = bucket.put_object(key, body, headers=headers)

    stored = store.get(OSS_BUCKET, key)
    assert stored is not None and stored.body == body
    assert stored.content_type == "application/cloudevents+json"
    assert stored.metadata == {"ce-type": "com.example"}
    assert result.etag == stored.etag
    assert result.crc == stored.crc64
    assert store.keys(OSS_BUCKET) == [key]

    fetched = bucket.get_object(key)
    assert fetched.read() == body
    assert fetched.headers["Content-Type"] == "application/cloudevents+json"
    assert fetched.headers["x-oss-meta-ce-type"] == "com.example"

    head = bucket.head_object(key)
    assert head.content_length == len(body)
    assert head.etag == stored.etag

    bucket.delete_object(key)
    assert store.get(OSS_BUCKET, key) is None
    assert store.stats.deleted == 1


def test_oss2_crc64_matches_the_client_computation(store):
    body = bytes(range(256)) * 1000
    result = oss_bucket(store).put_object("crc", body)
    client = oss2.utils.Crc64()
    client.update(body)
    assert result.crc == client.crc == store.get(OSS_BUCKET, "crc").crc64


def test_oss2_raises_inconsistent_error_when_the_crc_header_is_wrong(store):
    store.corrupt_crc_next(1)
    with pytest.raises(oss2.exceptions.InconsistentError):
        oss_bucket(store).put_object("crc-bad", b"some bytes")
    # The object was stored; only the answer lied, which is what the client must catch.
    assert store.get(OSS_BUCKET, "crc-bad").body == b"some bytes"
    oss_bucket(store).put_object("crc-good", b"some bytes")


def test_oss2_get_with_response_content_type_override(store):
    bucket = oss_bucket(store, "v4")
    bucket.put_object("t", b"x", headers={"Content-Type": "application/json"})
    fetched = bucket.get_object("t", params={"response-content-type": "text/plain"})
    assert fetched.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize("auth_kind", ["v1", "v4"])
def test_oss2_wrong_secret_raises_signature_does_not_match(store, auth_kind):
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as info:
        oss_bucket(store, auth_kind, sk="wrong").put_object("k", b"x")
    assert info.value.status == 403
    assert info.value.request_id
    assert info.value.details["StringToSign"]
    assert store.keys(OSS_BUCKET) == []
    assert store.stats.errors == {"SignatureDoesNotMatch": 1}


@pytest.mark.parametrize("auth_kind", ["v1", "v4"])
def test_oss2_wrong_secret_on_head_still_yields_the_real_class(store, auth_kind):
    # HEAD answers have no body: oss2 must find the code in the x-oss-err header.
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        oss_bucket(store, auth_kind, sk="wrong").head_object("k")


@pytest.mark.parametrize("auth_kind", ["v1", "v4"])
def test_oss2_unknown_access_key_is_403_invalid_access_key_id(store, auth_kind):
    # oss2 has no class for (403, InvalidAccessKeyId): it raises its generic ServerError.
    with pytest.raises(oss2.exceptions.ServerError) as info:
        oss_bucket(store, auth_kind, ak="nobody").put_object("k", b"x")
    assert (info.value.status, info.value.code) == (403, "InvalidAccessKeyId")
    assert type(info.value) is oss2.exceptions.ServerError


def test_oss2_anonymous_request_is_403_access_denied(store):
    anonymous = oss2.Bucket(oss2.AnonymousAuth(), store.endpoint, OSS_BUCKET)
    with pytest.raises(oss2.exceptions.AccessDenied):
        anonymous.put_object("k", b"x")
    assert store.keys(OSS_BUCKET) == []


@pytest.mark.parametrize("auth_kind", ["v1", "v4"])
def test_oss2_missing_bucket_raises_no_such_bucket(store, auth_kind):
    bucket = oss_bucket(store, auth_kind, bucket="no-such-bucket")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        bucket.head_object("k")


@pytest.mark.parametrize("auth_kind", ["v1", "v4"])
def test_oss2_missing_key_raises_no_such_key_on_get_and_head(store, auth_kind):
    bucket = oss_bucket(store, auth_kind)
    with pytest.raises(oss2.exceptions.NoSuchKey) as info:
        bucket.get_object("missing")
    assert info.value.details["Key"] == "missing"
    assert info.value.ec
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.head_object("missing")


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_oss2_sts_credentials_need_their_token(store, version):
    region = {"region": REGION} if version == "v4" else {}
    with_token = oss2.StsAuth(STS_AK, STS_SK, STS_TOKEN, version)
    oss2.Bucket(with_token, store.endpoint, OSS_BUCKET, **region).put_object("sts", b"x")
    assert store.get(OSS_BUCKET, "sts").body == b"x"

    no_token_auth = oss2.AuthV4 if version == "v4" else oss2.Auth
    no_token = oss2.Bucket(no_token_auth(STS_AK, STS_SK), store.endpoint, OSS_BUCKET, **region)
    with pytest.raises(oss2.exceptions.ServerError) as missing:
        no_token.put_object("sts2", b"x")
    assert (missing.value.status, missing.value.code) == (403, "InvalidAccessKeyId")

    wrong = oss2.StsAuth(STS_AK, STS_SK, "stolen-token", version)
    with pytest.raises(oss2.exceptions.ServerError) as bad:
        oss2.Bucket(wrong, store.endpoint, OSS_BUCKET, **region).put_object("sts3", b"x")
    assert (bad.value.status, bad.value.code) == (403, "InvalidSecurityToken")

    # A long-term key that sends a token is looked up among STS keys, and is not found there.
    long_term_with_token = oss2.StsAuth(AK, SK, STS_TOKEN, version)
    with pytest.raises(oss2.exceptions.ServerError) as stray:
        oss2.Bucket(long_term_with_token, store.endpoint, OSS_BUCKET, **region).put_object(
            "s4", b""
        )
    assert (stray.value.status, stray.value.code) == (403, "InvalidAccessKeyId")
    assert store.keys(OSS_BUCKET) == ["sts"]


def test_oss2_bad_content_md5_raises_invalid_digest(store):
    with pytest.raises(oss2.exceptions.InvalidDigest):
        oss_bucket(store).put_object(
            "md5", b"x", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="}
        )
    good = oss2.utils.content_md5(b"x")
    oss_bucket(store).put_object("md5", b"x", headers={"Content-MD5": good})
    assert store.get(OSS_BUCKET, "md5").body == b"x"


def test_oss2_clock_skew_is_refused_with_request_time_too_skewed(store):
    with ObjectStoreEmulator(buckets=[OSS_BUCKET], clock=lambda: time.time() + 3600) as skewed:
        bucket = oss2.Bucket(oss2.Auth(AK, SK), skewed.endpoint, OSS_BUCKET)
        with pytest.raises(oss2.exceptions.ServerError) as info:
            bucket.put_object("k", b"x")
        assert (info.value.status, info.value.code) == (403, "RequestTimeTooSkewed")
        assert skewed.keys(OSS_BUCKET) == []


def test_oss2_large_body_round_trip(store):
    body = bytes(range(256)) * (16 * 4096 + 1)  # 16 MiB + 256 bytes
    result = oss_bucket(store, "v4").put_object("big.bin", body)
    assert result.crc == store.get(OSS_BUCKET, "big.bin").crc64
    assert store.get(OSS_BUCKET, "big.bin").body == body


def test_oss2_multipart_is_refused_clearly(store):
    with pytest.raises(oss2.exceptions.ServerError) as info:
        oss_bucket(store).init_multipart_upload("mp")
    assert (info.value.status, info.value.code) == (501, "NotImplemented")


# ---------------------------------------------------------------------------------------------
# qcloud_cos


@pytest.mark.parametrize("key", KEYS)
def test_cos_put_get_head_delete_round_trip(store, key):
    client = cos_client(store)
    body = f"payload for {key}".encode()

    put = client.put_object(
        Bucket=COS_BUCKET,
        Key=key,
        Body=body,
        ContentType="application/json",
        Metadata={"x-cos-meta-ce-type": "com.example"},
    )

    stored = store.get(COS_BUCKET, key)
    assert stored is not None and stored.body == body
    assert (stored.content_type, stored.metadata) == (
        "application/json",
        {"ce-type": "com.example"},
    )
    assert put["ETag"] == f'"{stored.etag}"'
    assert put["x-cos-request-id"]

    got = client.get_object(Bucket=COS_BUCKET, Key=key)
    assert got["Body"].get_raw_stream().read() == body
    assert got["Content-Type"] == "application/json"
    assert got["x-cos-meta-ce-type"] == "com.example"

    head = client.head_object(Bucket=COS_BUCKET, Key=key)
    assert int(head["Content-Length"]) == len(body)

    client.delete_object(Bucket=COS_BUCKET, Key=key)
    assert store.get(COS_BUCKET, key) is None


def test_cos_object_headers_and_response_content_type_round_trip(store):
    client = cos_client(store)
    client.put_object(
        Bucket=COS_BUCKET,
        Key="h",
        Body=b"x",
        ContentType="application/json",
        CacheControl="no-cache",
        ContentDisposition='attachment; filename="a b.json"',
    )
    got = client.get_object(Bucket=COS_BUCKET, Key="h", ResponseContentType="text/plain")
    assert got["Content-Type"] == "text/plain"
    assert got["Cache-Control"] == "no-cache"
    assert got["Content-Disposition"] == 'attachment; filename="a b.json"'
    assert store.get(COS_BUCKET, "h").content_type == "application/json"


def test_cos_md5_enabled_put_verifies(store):
    cos_client(store).put_object(Bucket=COS_BUCKET, Key="md5", Body=b"abc", EnableMD5=True)
    assert store.get(COS_BUCKET, "md5").body == b"abc"


def cos_error_of(call) -> CosServiceError:
    with pytest.raises(CosServiceError) as info:
        call()
    return info.value


def test_cos_wrong_secret_raises_signature_does_not_match(store):
    client = cos_client(store, sk="wrong")
    err = cos_error_of(lambda: client.put_object(Bucket=COS_BUCKET, Key="k", Body=b"x"))
    assert (err.get_status_code(), err.get_error_code()) == (403, "SignatureDoesNotMatch")
    assert err.get_request_id() not in ("", "Unknown")
    assert err.get_trace_id() != "Unknown"
    assert store.keys(COS_BUCKET) == []


def test_cos_unknown_access_key_is_invalid_access_key_id(store):
    client = cos_client(store, ak="nobody")
    err = cos_error_of(lambda: client.get_object(Bucket=COS_BUCKET, Key="k"))
    assert (err.get_status_code(), err.get_error_code()) == (403, "InvalidAccessKeyId")


def test_cos_missing_bucket_and_key(store):
    client = cos_client(store)
    err = cos_error_of(lambda: client.put_object(Bucket="nobucket-1250000000", Key="k", Body=b""))
    assert (err.get_status_code(), err.get_error_code()) == (404, "NoSuchBucket")
    err = cos_error_of(lambda: client.get_object(Bucket=COS_BUCKET, Key="missing"))
    assert (err.get_status_code(), err.get_error_code()) == (404, "NoSuchKey")
    assert err.get_resource_location().endswith("/missing")
    # qcloud_cos ignores the body of a 404 HEAD and always reports NoSuchResource.
    err = cos_error_of(lambda: client.head_object(Bucket=COS_BUCKET, Key="missing"))
    assert (err.get_status_code(), err.get_error_code()) == (404, "NoSuchResource")
    assert err.get_request_id()


def test_cos_sts_token_is_required_and_checked(store):
    cos_client(store, STS_AK, STS_SK, STS_TOKEN).put_object(Bucket=COS_BUCKET, Key="s", Body=b"1")
    assert store.get(COS_BUCKET, "s").body == b"1"
    no_token = cos_client(store, STS_AK, STS_SK)
    err = cos_error_of(lambda: no_token.put_object(Bucket=COS_BUCKET, Key="s2", Body=b"1"))
    assert err.get_error_code() == "InvalidAccessKeyId"
    wrong = cos_client(store, STS_AK, STS_SK, "stolen")
    err = cos_error_of(lambda: wrong.put_object(Bucket=COS_BUCKET, Key="s3", Body=b"1"))
    assert err.get_error_code() == "InvalidSecurityToken"
    assert store.keys(COS_BUCKET) == ["s"]
