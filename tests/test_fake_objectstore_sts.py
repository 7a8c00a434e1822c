"""The emulator's STS: AssumeRoleWithOIDC's request and answer shapes, and expiring credentials
that OSS requests (signed by oss2, an SDK independent of the target's) are checked against."""

from __future__ import annotations

import time

import oss2
import pytest
import requests

from tests.fakes.objectstore import ObjectStoreEmulator

ROLE = "acs:ram::1234567890:role/r"
PROVIDER = "acs:ram::1234567890:oidc-provider/p"
TOKEN = "eyJ-test-token"
PARAMS = {
    "Action": "AssumeRoleWithOIDC",
    "Version": "2015-04-01",
    "Format": "JSON",
    "RoleArn": ROLE,
    "OIDCProviderArn": PROVIDER,
    "OIDCToken": TOKEN,
    "RoleSessionName": "session-1",
}


@pytest.fixture
def store():
    with ObjectStoreEmulator() as emulator:
        emulator.trust_oidc(ROLE, PROVIDER, TOKEN, max_session_seconds=7200)
        yield emulator


def test_assume_role_with_oidc_answers_credentials_oss_accepts(store):
    answer = requests.get(store.sts_endpoint + "/", params=PARAMS, timeout=5)
    assert answer.status_code == 200
    document = answer.json()
    assert set(document) >= {"RequestId", "Credentials", "AssumedRoleUser"}
    credentials = document["Credentials"]
    assert credentials["AccessKeyId"].startswith("STS.")
    assert credentials["Expiration"].endswith("Z")
    assert document["AssumedRoleUser"]["Arn"].endswith(":assumed-role/r/session-1")
    auth = oss2.StsAuth(
        credentials["AccessKeyId"], credentials["AccessKeySecret"], credentials["SecurityToken"]
    )
    oss2.Bucket(auth, store.endpoint, "test-bucket").put_object("k", b"v")
    assert store.get("test-bucket", "k").body == b"v"


def test_the_parameters_may_come_as_a_form_body(store):
    answer = requests.post(store.sts_endpoint + "/", data=PARAMS, timeout=5)
    assert answer.status_code == 200 and "Credentials" in answer.json()


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"OIDCToken": "eyJ-other"}, 400, "AuthenticationFail.OIDCToken.Invalid"),
        ({"OIDCToken": "abc"}, 400, "InvalidParameter.OIDCToken"),
        ({"RoleArn": "acs:ram::1:role/x"}, 404, "EntityNotExist.Role"),
        ({"RoleSessionName": "a b"}, 400, "InvalidParameter.RoleSessionName"),
        ({"RoleSessionName": None}, 400, "MissingParameter"),
        ({"DurationSeconds": "600"}, 400, "InvalidParameter.DurationSeconds"),
        ({"DurationSeconds": "7201"}, 400, "InvalidParameter.DurationSeconds"),
        ({"Version": "2019-01-01"}, 400, "InvalidVersion"),
        ({"Action": "AssumeRole"}, 400, "InvalidAction.NotFound"),
    ],
)
def test_refusals_have_the_sts_error_shape(store, change, status, code):
    params = {k: v for k, v in {**PARAMS, **change}.items() if v is not None}
    answer = requests.get(store.sts_endpoint + "/", params=params, timeout=5)
    assert answer.status_code == status
    assert answer.json()["Code"] == code
    assert set(answer.json()) == {"RequestId", "HostId", "Code", "Message"}


def test_issued_credentials_expire(store):
    issued = store.issue_sts(0.5)
    bucket = oss2.Bucket(
        oss2.StsAuth(issued.access_key_id, issued.access_key_secret, issued.security_token),
        store.endpoint,
        "test-bucket",
    )
    bucket.put_object("before", b"v")
    time.sleep(0.6)
    with pytest.raises(oss2.exceptions.OssError) as caught:
        bucket.put_object("after", b"v")
    assert (caught.value.status, caught.value.code) == (403, "SecurityTokenExpired")


def test_revoked_keys_are_unknown(store):
    bucket = oss2.Bucket(oss2.Auth("test-ak", "test-sk"), store.endpoint, "test-bucket")
    bucket.put_object("k", b"v")
    store.revoke("test-ak")
    with pytest.raises(oss2.exceptions.OssError) as caught:
        bucket.put_object("k", b"v")
    assert caught.value.code == "InvalidAccessKeyId"


def test_injected_sts_faults(store):
    store.fail_sts_next(1, status=503, code="ServiceUnavailable")
    assert requests.get(store.sts_endpoint + "/", params=PARAMS, timeout=5).status_code == 503
    assert requests.get(store.sts_endpoint + "/", params=PARAMS, timeout=5).status_code == 200
