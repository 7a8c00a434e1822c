"""Pure rules of AlibabaOssTarget: bucket names, endpoint, the put-only policy, argument checks."""

import json

import pulumi
import pytest

from components import oss_target_spec as spec

BASE = {"region": "cn-hangzhou", "bucket_name": "acme-events"}


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("abc", True),
        ("acme-events-01", True),
        ("0bucket9", True),
        ("a" * 63, True),
        ("ab", False),
        ("a" * 64, False),
        ("Acme", False),
        ("acme_events", False),
        ("-acme", False),
        ("acme-", False),
        ("acme.events", False),
        ("", False),
        (None, False),
    ],
)
def test_bucket_names(name, valid):
    if valid:
        assert spec.validate_bucket_name(name) == name
    else:
        with pytest.raises(ValueError, match=r"^bucket_name: "):
            spec.validate_bucket_name(name)


@pytest.mark.parametrize(
    ("region", "internal", "endpoint"),
    [
        ("cn-hangzhou", False, "https://oss-cn-hangzhou.aliyuncs.com"),
        ("cn-hangzhou", True, "https://oss-cn-hangzhou-internal.aliyuncs.com"),
        ("ap-southeast-1", False, "https://oss-ap-southeast-1.aliyuncs.com"),
    ],
)
def test_endpoint_from_region(region, internal, endpoint):
    assert spec.oss_endpoint(region, internal) == endpoint


def test_policy_allows_exactly_put_object_on_that_bucket():
    document = json.loads(spec.put_only_policy("acme-events"))
    assert document == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject"],
                "Resource": ["acs:oss:*:*:acme-events/*"],
            }
        ],
    }


def test_defaults():
    s = spec.oss_target_settings("t", BASE)
    assert (s.encryption, s.kms_key_id, s.versioning, s.expiration_days, s.protect) == (
        "AES256",
        None,
        False,
        None,
        False,
    )
    assert (s.create_bucket, s.supplied_key, s.store, s.key_prefix) == (True, False, "data", "")
    assert (s.ram_user_name, s.ram_policy_name) == ("t-oss-writer", "t-oss-put-only")
    assert s.endpoint == "https://oss-cn-hangzhou.aliyuncs.com"


def test_runtime_env_carries_no_credentials():
    s = spec.oss_target_settings("t", {**BASE, "key_prefix": "events/", "store": "event"})
    assert spec.runtime_env(s) == {
        "OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
        "OSS_BUCKET": "acme-events",
        "OSS_REGION": "cn-hangzhou",
        "STORE": "event",
        "OSS_KEY_PREFIX": "events/",
    }


class _Secret:
    """Stands for a pulumi secret Output: anything but a plain string."""


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region": "Hangzhou"}, "region"),
        ({"region": None}, "region"),
        ({"bucket_name": "Bad"}, "bucket_name"),
        ({"create_bucket": "yes"}, "create_bucket"),
        ({"create_bucket": False, "versioning": True}, "versioning"),
        ({"create_bucket": False, "protect": True}, "protect"),
        ({"create_bucket": False, "encryption": "AES256"}, "encryption"),
        ({"create_bucket": False, "expiration_days": 3}, "expiration_days"),
        ({"encryption": "DES"}, "encryption"),
        ({"kms_key_id": "key-1"}, "kms_key_id"),
        ({"encryption": "KMS", "kms_key_id": ""}, "kms_key_id"),
        ({"expiration_days": 0}, "expiration_days"),
        ({"expiration_days": True}, "expiration_days"),
        ({"access_key_id": "LTAI5tAAAAAAAAAAAAAA"}, "access_key_secret"),
        ({"access_key_secret": _Secret()}, "access_key_id"),
        ({"access_key_id": "bad id!", "access_key_secret": _Secret()}, "access_key_id"),
        (
            {"access_key_id": "LTAI5tAAAAAAAAAAAAAA", "access_key_secret": "plain"},
            "access_key_secret",
        ),
        (
            {
                "access_key_id": "LTAI5tAAAAAAAAAAAAAA",
                "access_key_secret": _Secret(),
                "ram_user_name": "w",
            },
            "ram_user_name",
        ),
        ({"ram_user_name": "has space"}, "ram_user_name"),
        ({"ram_policy_name": "under_score"}, "ram_policy_name"),
        ({"store": "both"}, "store"),
        ({"key_prefix": "/abs"}, "key_prefix"),
        ({"versioning": "on"}, "versioning"),
        ({"bucket": "x"}, "bucket"),
    ],
)
def test_invalid_arguments_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"^{field}: "):
        spec.oss_target_settings("t", {**BASE, **overrides})


def test_supplied_key_pair_is_accepted_as_a_secret():
    s = spec.oss_target_settings(
        "t", {**BASE, "access_key_id": "LTAI5tAAAAAAAAAAAAAA", "access_key_secret": _Secret()}
    )
    assert s.supplied_key


def test_pulumi_output_counts_as_a_secret_input():
    # An Output is not a plain string, so the rule accepts it without resolving it.
    output = pulumi.Output.__new__(pulumi.Output)
    s = spec.oss_target_settings(
        "t", {**BASE, "access_key_id": "LTAI5tAAAAAAAAAAAAAA", "access_key_secret": output}
    )
    assert s.supplied_key
