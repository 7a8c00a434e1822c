"""Pure rules of AlibabaOssTarget: bucket names, endpoint, the put-only policy, argument checks."""

import json

import pulumi
import pytest

from components import oss_target_spec as spec
from components.alibaba_oss_target import AlibabaOssTargetArgs
from components.schema import validate

BASE = {"region": "cn-hangzhou", "bucket_name": "acme-events"}
WHERE = {"project": "proj", "stack": "dev"}


def settings(name, args, **where):
    """Through the schema first, as the component does: structure there, rules here."""
    return spec.oss_target_settings(
        name, validate(AlibabaOssTargetArgs, args), **{**WHERE, **where}
    )


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
        # Alibaba's rule allows consecutive hyphens; the runtime shares this very rule.
        ("acme--events", True),
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
    s = settings("t", BASE)
    assert (s.encryption, s.kms_key_id, s.versioning, s.expiration_days, s.protect) == (
        "AES256",
        None,
        False,
        None,
        False,
    )
    assert (s.create_bucket, s.supplied_key, s.store, s.key_prefix) == (True, False, "data", "")
    assert (s.ram_user_name, s.ram_policy_name) == (
        "proj-dev-t-oss-writer",
        "proj-dev-t-oss-put-only",
    )
    assert (s.force_destroy, s.rrsa) == (False, None)
    assert s.endpoint == "https://oss-cn-hangzhou.aliyuncs.com"


def test_runtime_env_carries_no_credentials():
    s = settings("t", {**BASE, "key_prefix": "events/", "store": "event"})
    assert spec.runtime_env(s) == {
        "OSS_ENDPOINT": "https://oss-cn-hangzhou.aliyuncs.com",
        "OSS_BUCKET": "acme-events",
        "OSS_REGION": "cn-hangzhou",
        "STORE": "event",
        "OSS_KEY_PREFIX": "events/",
    }


def _Secret():
    """A pulumi secret Output (the schema takes an Output for an Input field as is)."""
    return pulumi.Output.secret("s3cr3t")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"region": "Hangzhou"}, "region"),
        ({"region": "cn-hangzou"}, "region"),
        ({"region": "ap-guangzhou"}, "region"),
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
        settings("t", {**BASE, **overrides})


def test_supplied_key_pair_is_accepted_as_a_secret():
    s = settings(
        "t", {**BASE, "access_key_id": "LTAI5tAAAAAAAAAAAAAA", "access_key_secret": _Secret()}
    )
    assert s.supplied_key


def test_pulumi_output_counts_as_a_secret_input():
    # An Output is not a plain string, so the rule accepts it without resolving it.
    output = pulumi.Output.__new__(pulumi.Output)
    s = settings(
        "t", {**BASE, "access_key_id": "LTAI5tAAAAAAAAAAAAAA", "access_key_secret": output}
    )
    assert s.supplied_key


def test_component_and_runtime_share_one_bucket_rule():
    from runtime.alibaba_oss_target.bucket_name import bucket_name_problem

    for name in ("acme--events", "acme-events", "ab", "Acme", "acme-", "a" * 64):
        accepted = bucket_name_problem(name) is None
        try:
            spec.validate_bucket_name(name)
            assert accepted, name
        except ValueError:
            assert not accepted, name


@pytest.mark.parametrize(
    ("region", "hint"),
    [
        ("cn-hangzou", "did you mean cn-hangzhou?"),
        ("ap-guangzhou", "that id is Tencent Cloud's"),
        ("mars-1", "valid: cn-hangzhou, "),
    ],
)
def test_region_errors_list_the_valid_ones(region, hint):
    with pytest.raises(ValueError) as error:
        settings("t", {**BASE, "region": region})
    assert hint in str(error.value)
    assert "cn-shanghai" in str(error.value)


def test_default_ram_names_differ_per_stack_and_component():
    names = {
        (s.ram_user_name, s.ram_policy_name)
        for s in (
            settings("t", BASE, stack="dev"),
            settings("t", BASE, stack="prod"),
            settings("u", BASE, stack="dev"),
            settings("t", BASE, project="other", stack="dev"),
        )
    }
    assert len(names) == 4


@pytest.mark.parametrize(
    ("field", "limit"),
    [("ram_user_name", 64), ("ram_policy_name", 128), ("ram_role_name", 64)],
)
def test_default_ram_names_fit_ram_rules_for_any_stack_name(field, limit):
    for stack in ("dev", "feature_x.1", "a" * 200, "_under", "ünïcode"):
        name = spec.default_ram_name(field, "my_project", stack, "oss-target", "oss-writer")
        assert len(name) <= limit
        spec._ram_name(field, name)  # raises if RAM would refuse it
    long_a = spec.default_ram_name(field, "p", "a" * 200 + "1", "t", "s")
    long_b = spec.default_ram_name(field, "p", "a" * 200 + "2", "t", "s")
    assert long_a != long_b


@pytest.mark.parametrize(
    ("name", "valid"),
    [("writer", True), ("w.r_i-t3", True), ("-writer", False), ("a@b", False), ("a" * 65, False)],
)
def test_ram_user_name_rule(name, valid):
    if valid:
        assert settings("t", {**BASE, "ram_user_name": name}).ram_user_name == name
    else:
        with pytest.raises(ValueError, match=r"^ram_user_name: "):
            settings("t", {**BASE, "ram_user_name": name})


def test_kms_policy_only_for_a_customer_key():
    assert "kms:" not in spec.put_only_policy("b")
    document = json.loads(spec.put_only_policy("b", "key-1", "cn-shanghai"))
    assert document["Statement"][1]["Resource"] == ["acs:kms:cn-shanghai:*:key/key-1"]


RRSA = {
    "mode": "rrsa",
    "oidc_provider_arn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1a2b3",
    "oidc_issuer_url": "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c1a2b3",
}


def test_rrsa_settings_and_trust_policy():
    s = settings("t", {**BASE, "credentials": {**RRSA, "service_account_name": "writer"}})
    assert s.rrsa is not None and s.rrsa.ram_role_name == "proj-dev-t-oss-writer"
    trust = json.loads(spec.rrsa_trust_policy(s.rrsa, "ce"))
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Federated": [RRSA["oidc_provider_arn"]]}
    assert statement["Condition"]["StringEquals"]["oidc:sub"] == ["system:serviceaccount:ce:writer"]


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({**RRSA, "oidc_provider_arn": "arn:aws:iam::1:oidc-provider/x"}, "credentials.oidc_pro"),
        ({k: v for k, v in RRSA.items() if k != "oidc_issuer_url"}, "credentials.oidc_issuer_url"),
        ({**RRSA, "service_account_name": "Writer"}, "credentials.service_account_name"),
        ({**RRSA, "audience": "x"}, "credentials.audience"),
        ({**RRSA, "oidc_provider_arn": 5}, "credentials.oidc_provider_arn"),
        ({**RRSA, "oidc_issuer_url": 5}, "credentials.oidc_issuer_url"),
    ],
)
def test_rrsa_arguments_are_checked(credentials, field):
    with pytest.raises(ValueError, match=rf"^{field}"):
        settings("t", {**BASE, "credentials": credentials})
