"""AlibabaOssTarget under the mocks: resources, bucket safety, put-only identity, secrets."""

import json

import pulumi
import pytest

from components import AlibabaOssTarget
from tests.components.helpers import names_by_type, urn_parent_type
from tests.pulumi_mocks import is_secret, plain_strings

ARGS = {"region": "cn-hangzhou", "bucket_name": "acme-events", "runtime": {"namespace": "ce"}}
KEY_ID = "LTAI5tSUPPLIEDKEY000"
KEY_SECRET = "supplied-secret-value-123"


def _target(**overrides):
    return AlibabaOssTarget("oss-target", {**ARGS, **overrides})


def test_declares_exactly_these_resources(pulumi_mocks):
    pulumi_mocks.run(_target)
    component = pulumi_mocks.one("cloudevents-connectors:index:AlibabaOssTarget")
    assert names_by_type(pulumi_mocks, component.urn) == {
        ("alicloud:oss/bucket:Bucket", "oss-target-bucket"),
        ("alicloud:oss/bucketAcl:BucketAcl", "oss-target-bucket-acl"),
        (
            "alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "oss-target-bucket-public-access-block",
        ),
        ("alicloud:ram/user:User", "oss-target-writer"),
        ("alicloud:ram/policy:Policy", "oss-target-writer-policy"),
        (
            "alicloud:ram/userPolicyAttachment:UserPolicyAttachment",
            "oss-target-writer-policy-attachment",
        ),
        ("alicloud:ram/accessKey:AccessKey", "oss-target-writer-key"),
        ("kubernetes:core/v1:Secret", "oss-target-credentials"),
        ("cloudevents-connectors:index:ContainerRuntime", "oss-target-runtime"),
        ("kubernetes:apps/v1:Deployment", "oss-target-runtime-deployment"),
        ("kubernetes:core/v1:Service", "oss-target-runtime-service"),
        ("kubernetes:autoscaling/v2:HorizontalPodAutoscaler", "oss-target-runtime-hpa"),
        ("kubernetes:policy/v1:PodDisruptionBudget", "oss-target-runtime-pdb"),
    }
    for child in pulumi_mocks.children_of(component.urn):
        assert urn_parent_type(child.urn) == component.typ, child.urn


def test_bucket_is_private_blocked_and_encrypted(pulumi_mocks):
    pulumi_mocks.run(_target)
    bucket = pulumi_mocks.one("alicloud:oss/bucket:Bucket")
    assert bucket.inputs["bucket"] == "acme-events"
    assert bucket.inputs["serverSideEncryptionRule"] == {"sseAlgorithm": "AES256"}
    assert "acl" not in bucket.inputs  # deprecated inline field; BucketAcl owns it
    acl = pulumi_mocks.one("alicloud:oss/bucketAcl:BucketAcl")
    assert acl.inputs == {"bucket": "acme-events", "acl": "private"}
    block = pulumi_mocks.one("alicloud:oss/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.inputs == {"bucket": "acme-events", "blockPublicAccess": True}
    assert bucket.protect is False


def test_kms_versioning_lifecycle_and_protect(pulumi_mocks):
    pulumi_mocks.run(
        lambda: _target(
            encryption="KMS",
            kms_key_id="key-123",
            versioning=True,
            expiration_days=30,
            key_prefix="events/",
            protect=True,
        )
    )
    bucket = pulumi_mocks.one("alicloud:oss/bucket:Bucket")
    assert bucket.protect is True
    assert bucket.inputs["serverSideEncryptionRule"] == {
        "sseAlgorithm": "KMS",
        "kmsMasterKeyId": "key-123",
    }
    assert bucket.inputs["versioning"] == {"status": "Enabled"}
    (rule,) = bucket.inputs["lifecycleRules"]
    assert rule["enabled"] is True and rule["prefix"] == "events/"
    assert rule["expirations"] == [{"days": 30.0}]


def test_ram_policy_allows_exactly_put_object_on_that_bucket(pulumi_mocks):
    pulumi_mocks.run(_target)
    policy = pulumi_mocks.one("alicloud:ram/policy:Policy")
    document = json.loads(policy.inputs["policyDocument"])
    (statement,) = document["Statement"]
    assert statement == {
        "Effect": "Allow",
        "Action": ["oss:PutObject"],
        "Resource": ["acs:oss:*:*:acme-events/*"],
    }
    attachment = pulumi_mocks.one("alicloud:ram/userPolicyAttachment:UserPolicyAttachment")
    assert attachment.inputs == {
        "policyName": policy.inputs["policyName"],
        "policyType": "Custom",
        "userName": pulumi_mocks.one("alicloud:ram/user:User").inputs["name"],
    }
    key = pulumi_mocks.one("alicloud:ram/accessKey:AccessKey")
    assert key.inputs == {"userName": "oss-target-oss-writer"}


def test_generated_secret_stays_secret(pulumi_mocks):
    pulumi_mocks.run(_target)
    generated = pulumi_mocks.one("alicloud:ram/accessKey:AccessKey").outputs["secret"]
    assert is_secret(generated)
    secret_value = generated["value"]
    credentials = pulumi_mocks.one("kubernetes:core/v1:Secret")
    assert is_secret(credentials.inputs["stringData"])
    assert credentials.plain_inputs["stringData"]["access-key-secret"] == secret_value
    for r in pulumi_mocks.resources:
        assert secret_value not in set(plain_strings(r.inputs)), r.urn


def test_supplied_key_pair_replaces_the_ram_identity(pulumi_mocks):
    target = pulumi_mocks.run(
        lambda: _target(access_key_id=KEY_ID, access_key_secret=pulumi.Output.secret(KEY_SECRET))
    )
    assert not [r for r in pulumi_mocks.resources if r.typ.startswith("alicloud:ram/")]
    credentials = pulumi_mocks.one("kubernetes:core/v1:Secret")
    assert credentials.plain_inputs["stringData"] == {
        "access-key-id": KEY_ID,
        "access-key-secret": KEY_SECRET,
    }
    for r in pulumi_mocks.resources:
        assert not any(KEY_SECRET in s for s in plain_strings(r.inputs)), r.urn
    assert pulumi_mocks.value(target.secret_name) == "oss-target-oss-credentials"


def test_existing_bucket_is_used_not_managed(pulumi_mocks):
    target = pulumi_mocks.run(lambda: _target(create_bucket=False, bucket_name="their-bucket"))
    assert not [r for r in pulumi_mocks.resources if r.typ.startswith("alicloud:oss/")]
    policy = json.loads(pulumi_mocks.one("alicloud:ram/policy:Policy").inputs["policyDocument"])
    assert policy["Statement"][0]["Resource"] == ["acs:oss:*:*:their-bucket/*"]
    assert pulumi_mocks.value(target.bucket_name) == "their-bucket"


def test_runtime_wiring_and_outputs(pulumi_mocks):
    target = pulumi_mocks.run(
        lambda: _target(use_internal_endpoint=True, store="event", key_prefix="ce/")
    )
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "runtime.alibaba_oss_target"]
    assert container["image"] == "ghcr.io/cloudevents-connectors/alibaba-oss-target:0.1.0"
    env = {e["name"]: e for e in container["env"]}
    assert env["OSS_ENDPOINT"]["value"] == "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert env["OSS_BUCKET"]["value"] == "acme-events"
    assert env["STORE"]["value"] == "event"
    assert env["OSS_KEY_PREFIX"]["value"] == "ce/"
    for name, key in (
        ("OSS_ACCESS_KEY_ID", "access-key-id"),
        ("OSS_ACCESS_KEY_SECRET", "access-key-secret"),
    ):
        assert env[name] == {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": "oss-target-oss-credentials", "key": key}},
        }
    runtime = pulumi_mocks.one("cloudevents-connectors:index:ContainerRuntime")
    assert pulumi_mocks.one("alicloud:oss/bucket:Bucket").urn in runtime.dependencies
    assert pulumi_mocks.value(target.url) == "http://oss-target.ce.svc.cluster.local"
    assert pulumi_mocks.value(target.endpoint) == "https://oss-cn-hangzhou-internal.aliyuncs.com"
    assert pulumi_mocks.value(target.bucket_name) == "acme-events"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"bucket_name": "Bad_Bucket"}, "bucket_name"),
        ({"region": "hangzhou"}, "region"),
        ({"encryption": "ROT13"}, "encryption"),
        ({"kms_key_id": "k"}, "kms_key_id"),
        ({"create_bucket": False, "protect": True}, "protect"),
        ({"access_key_id": KEY_ID}, "access_key_secret"),
        ({"access_key_id": KEY_ID, "access_key_secret": KEY_SECRET}, "access_key_secret"),
        ({"store": "nothing"}, "store"),
        ({"runtime": {"min_replicas": 0}}, "runtime.min_replicas"),
        ({"runtime": {"command": ["sh"]}}, "runtime.command"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_arguments_raise_before_anything_is_registered(pulumi_mocks, overrides, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        pulumi_mocks.run(lambda: _target(**overrides))
    assert pulumi_mocks.resources == []
