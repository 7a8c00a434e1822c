"""AlibabaOssTarget under the mocks: resources, bucket safety, put-only identity, secrets."""

import json

import pulumi
import pulumi_kubernetes as k8s
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
    # Versioned: old versions expire too, or the expiration would only add delete markers.
    assert rule["noncurrentVersionExpirations"] == [{"days": 30.0}]
    # A customer key: the writer may use exactly that key.
    document = json.loads(pulumi_mocks.one("alicloud:ram/policy:Policy").inputs["policyDocument"])
    assert document["Statement"][1] == {
        "Effect": "Allow",
        "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
        "Resource": ["acs:kms:cn-hangzhou:*:key/key-123"],
    }


def test_unversioned_bucket_has_no_noncurrent_rule_and_default_kms_no_kms_grant(pulumi_mocks):
    pulumi_mocks.run(lambda: _target(encryption="KMS", expiration_days=7))
    bucket = pulumi_mocks.one("alicloud:oss/bucket:Bucket")
    assert "noncurrentVersionExpirations" not in bucket.inputs["lifecycleRules"][0]
    document = json.loads(pulumi_mocks.one("alicloud:ram/policy:Policy").inputs["policyDocument"])
    assert [s["Action"] for s in document["Statement"]] == [["oss:PutObject"]]


@pytest.mark.parametrize("force", [True, False])
def test_force_destroy_reaches_the_bucket(pulumi_mocks, force):
    pulumi_mocks.run(lambda: _target(force_destroy=force))
    assert pulumi_mocks.one("alicloud:oss/bucket:Bucket").inputs["forceDestroy"] is force


def test_default_ram_names_carry_project_stack_and_component(pulumi_mocks):
    pulumi_mocks.run(lambda: AlibabaOssTarget("archive", ARGS))
    user = pulumi_mocks.one("alicloud:ram/user:User").inputs["name"]
    policy = pulumi_mocks.one("alicloud:ram/policy:Policy").inputs["policyName"]
    assert user == "cloudevents-connectors-dev-archive-oss-writer"
    assert policy == "cloudevents-connectors-dev-archive-oss-put-only"


def test_credentials_secret_is_auto_named_so_a_new_key_rolls_the_pods(pulumi_mocks):
    """A fixed name keeps the Deployment unchanged when the key changes (pods keep the old key);
    without one, the replacement Secret's new name is what the pod template references."""
    pulumi_mocks.run(_target)
    secret = pulumi_mocks.one("kubernetes:core/v1:Secret")
    assert "name" not in secret.inputs["metadata"]
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    refs = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for e in deployment.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert refs == {secret.outputs["metadata"]["name"]}


RRSA = {
    "mode": "rrsa",
    "oidc_provider_arn": "acs:ram::1234567890123456:oidc-provider/ack-rrsa-c1a2b3",
    "oidc_issuer_url": "https://oidc-ack-cn-hangzhou.oss-cn-hangzhou.aliyuncs.com/c1a2b3",
}


def test_rrsa_role_trusts_exactly_this_cluster_and_service_account(pulumi_mocks):
    target = pulumi_mocks.run(lambda: _target(credentials=RRSA))
    assert not [r for r in pulumi_mocks.resources if r.typ == "alicloud:ram/user:User"]
    assert not [r for r in pulumi_mocks.resources if r.typ == "alicloud:ram/accessKey:AccessKey"]
    assert not [r for r in pulumi_mocks.resources if r.typ == "kubernetes:core/v1:Secret"]
    role = pulumi_mocks.one("alicloud:ram/role:Role")
    assert role.inputs["roleName"] == "cloudevents-connectors-dev-oss-target-oss-writer"
    trust = json.loads(role.inputs["assumeRolePolicyDocument"])
    assert trust == {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Federated": [RRSA["oidc_provider_arn"]]},
                "Condition": {
                    "StringEquals": {
                        "oidc:iss": [RRSA["oidc_issuer_url"]],
                        "oidc:aud": ["sts.aliyuncs.com"],
                        "oidc:sub": ["system:serviceaccount:ce:oss-target"],
                    }
                },
            }
        ],
    }
    attachment = pulumi_mocks.one("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment")
    policy = pulumi_mocks.one("alicloud:ram/policy:Policy")
    assert attachment.inputs == {
        "policyName": policy.inputs["policyName"],
        "policyType": "Custom",
        "roleName": role.inputs["roleName"],
    }
    assert json.loads(policy.inputs["policyDocument"])["Statement"][0]["Action"] == [
        "oss:PutObject"
    ]
    account = pulumi_mocks.one("kubernetes:core/v1:ServiceAccount")
    assert account.inputs["metadata"]["name"] == "oss-target"
    assert account.inputs["metadata"]["namespace"] == "ce"
    assert account.inputs["metadata"]["annotations"] == {
        "pod-identity.alibabacloud.com/role-name": role.inputs["roleName"]
    }
    pod = pulumi_mocks.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "oss-target"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert not {"OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"} & set(env)
    assert env["ALIBABA_CLOUD_ROLE_ARN"] == role.outputs["arn"]
    assert pulumi_mocks.value(target.role_arn) == role.outputs["arn"]
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"] == RRSA["oidc_provider_arn"]
    assert env["ALIBABA_CLOUD_OIDC_TOKEN_FILE"].startswith("/var/run/secrets/")
    assert pulumi_mocks.value(target.secret_name) is None


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
    assert key.inputs == {"userName": "cloudevents-connectors-dev-oss-target-oss-writer"}


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
    assert pulumi_mocks.value(target.secret_name) == credentials.outputs["metadata"]["name"]


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
    secret_name = pulumi_mocks.one("kubernetes:core/v1:Secret").outputs["metadata"]["name"]
    for name, key in (
        ("OSS_ACCESS_KEY_ID", "access-key-id"),
        ("OSS_ACCESS_KEY_SECRET", "access-key-secret"),
    ):
        assert env[name] == {
            "name": name,
            "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}},
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
        ({"region": "ap-guangzhou"}, "region"),
        ({"bucket_name": "acme--events-"}, "bucket_name"),
        ({"ram_user_name": "-writer"}, "ram_user_name"),
        ({"ram_user_name": "writer@acme"}, "ram_user_name"),
        ({"ram_policy_name": "put_only"}, "ram_policy_name"),
        ({"credentials": {"mode": "sts"}}, "credentials.mode"),
        ({"credentials": {"mode": "rrsa"}}, "credentials.oidc_provider_arn"),
        ({"credentials": {**RRSA, "oidc_issuer_url": "http://x"}}, "credentials.oidc_issuer_url"),
        ({"credentials": {**RRSA, "ram_role_name": "a_b"}}, "ram_role_name"),
        ({"credentials": RRSA, "ram_user_name": "w"}, "ram_user_name"),
        ({"credentials": {"mode": "accessKey", "ram_role_name": "r"}}, "credentials.ram_role_name"),
    ],
)
def test_invalid_arguments_raise_before_anything_is_registered(pulumi_mocks, overrides, field):
    with pytest.raises(ValueError, match=f"^{field}: "):
        pulumi_mocks.run(lambda: _target(**overrides))
    assert pulumi_mocks.resources == []


def test_rrsa_takes_the_clusters_outputs(pulumi_mocks):
    """A cluster declared in the same program gives its RRSA metadata as Outputs."""
    credentials = {
        "mode": "rrsa",
        "oidc_provider_arn": pulumi.Output.from_input(RRSA["oidc_provider_arn"]),
        "oidc_issuer_url": pulumi.Output.from_input(RRSA["oidc_issuer_url"]),
    }
    pulumi_mocks.run(lambda: _target(credentials=credentials))
    trust = json.loads(
        pulumi_mocks.one("alicloud:ram/role:Role").inputs["assumeRolePolicyDocument"]
    )
    statement = trust["Statement"][0]
    assert statement["Principal"] == {"Federated": [RRSA["oidc_provider_arn"]]}
    assert statement["Condition"]["StringEquals"]["oidc:iss"] == [RRSA["oidc_issuer_url"]]
    pod = pulumi_mocks.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"] == RRSA["oidc_provider_arn"]


def test_key_template_and_batch_reach_the_pod_env(pulumi_mocks):
    pulumi_mocks.run(
        lambda: _target(
            key_template="dt=%F/{type}/{id}",
            batch={"max_events": 500, "max_seconds": 2.5, "compression": "zstd"},
        )
    )
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OSS_KEY_TEMPLATE"] == "dt=%F/{type}/{id}"
    assert (env["BATCH_MAX_EVENTS"], env["BATCH_MAX_SECONDS"]) == ("500", "2.5")
    assert env["BATCH_COMPRESSION"] == "zstd"
    assert "BATCH_MAX_BYTES" not in env  # the runtime's default (8 MiB)


def test_default_target_sets_no_template_or_batch_env(pulumi_mocks):
    pulumi_mocks.run(_target)
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    (container,) = deployment.inputs["spec"]["template"]["spec"]["containers"]
    names = {e["name"] for e in container["env"]}
    assert not names & {"OSS_KEY_TEMPLATE", "BATCH_MAX_EVENTS", "BATCH_COMPRESSION"}


def test_an_invalid_key_template_creates_nothing(pulumi_mocks):
    with pytest.raises(ValueError, match=r"key_template: .*must not start"):
        pulumi_mocks.run(lambda: _target(key_template="/{id}"))
    assert pulumi_mocks.resources == []


@pytest.mark.parametrize(("internal", "vpc"), [(False, "false"), (True, "true")])
def test_rrsa_reaches_sts_in_the_targets_region(pulumi_mocks, internal, vpc):
    # Without these the credentials library calls the public sts.aliyuncs.com, which a cluster
    # without internet egress cannot reach; with the VPC endpoint it calls sts-vpc.<region>.
    pulumi_mocks.run(lambda: _target(credentials=RRSA, use_internal_endpoint=internal))
    pod = pulumi_mocks.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["ALIBABA_CLOUD_STS_REGION"] == "cn-hangzhou"
    assert env["ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"] == vpc


def test_the_sts_variables_are_the_ones_the_credentials_library_reads():
    import inspect

    from alibabacloud_credentials.utils import auth_util

    source = inspect.getsource(auth_util)
    for name in ("ALIBABA_CLOUD_STS_REGION", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"):
        assert f"'{name}'" in source or f'"{name}"' in source, name


def test_access_key_mode_sets_no_sts_variables(pulumi_mocks):
    pulumi_mocks.run(_target)
    pod = pulumi_mocks.one("kubernetes:apps/v1:Deployment").inputs["spec"]["template"]["spec"]
    names = {e["name"] for e in pod["containers"][0]["env"]}
    assert not {n for n in names if n.startswith("ALIBABA_CLOUD_")}


@pytest.mark.parametrize("mode", ["rrsa", "accessKey"])
def test_pods_start_after_their_identity_exists(pulumi_mocks, mode):
    credentials = RRSA if mode == "rrsa" else {"mode": "accessKey"}
    pulumi_mocks.run(lambda: _target(credentials=credentials))
    if mode == "rrsa":
        waits = {
            pulumi_mocks.one("alicloud:ram/rolePolicyAttachment:RolePolicyAttachment").urn,
            pulumi_mocks.one("kubernetes:core/v1:ServiceAccount").urn,
        }
    else:
        waits = {pulumi_mocks.one("alicloud:ram/userPolicyAttachment:UserPolicyAttachment").urn}
    waits.add(pulumi_mocks.one("alicloud:oss/bucket:Bucket").urn)
    # The objects that start pods wait themselves (a component's depends_on does not reach them).
    deployment = pulumi_mocks.one("kubernetes:apps/v1:Deployment")
    assert waits <= set(deployment.dependencies)


def _batch_target(batch, memory_limit=None):
    runtime = {} if memory_limit is None else {"memory_limit": memory_limit}
    return lambda: AlibabaOssTarget(
        "t",
        {"region": "cn-hangzhou", "bucket_name": "acme-x", "batch": batch, "runtime": runtime},
    )


def test_batch_max_bytes_must_fit_the_runtimes_in_flight_budget(pulumi_mocks):
    """The runtime's own rule (exit 2 at start-up otherwise), before any resource exists."""
    from runtime.receiver.settings import in_flight_budget

    budget = in_flight_budget(256 * 1024**2)
    too_big = _batch_target({"max_events": 10, "max_bytes": budget + 1})
    with pytest.raises(ValueError, match=rf"^batch\.max_bytes: .* must be at most {budget} "):
        pulumi_mocks.run(too_big)
    assert pulumi_mocks.resources == []
    pulumi_mocks.reset()
    pulumi_mocks.run(_batch_target({"max_events": 10, "max_bytes": budget}))
    pulumi_mocks.reset()
    # A larger memory limit admits it.
    pulumi_mocks.run(_batch_target({"max_events": 10, "max_bytes": 64 * 1024**2}, "512Mi"))


def test_batch_max_bytes_output_beyond_the_budget_fails_the_deployment(pulumi_mocks):
    def program():
        size = k8s.core.v1.ConfigMap("v", data={"n": "x"}).data.apply(lambda _: 64 * 1024**2)
        return _batch_target({"max_events": 10, "max_bytes": size})()

    with pytest.raises(Exception, match=r"batch\.max_bytes: 67108864 is above"):
        pulumi_mocks.run(program)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        # One object per event: without {id} distinct events would replace each other.
        ({"key_template": "{type}"}, "must contain {id}"),
        # Rolled objects: the template without {id} + the object name must be a valid key.
        ({"key_template": "{id}/events", "batch": {"max_events": 100}}, "must not start"),
        ({"key_template": ".{id}/x", "batch": {"max_events": 100}}, r"'\.'"),
        ({"key_template": "{data}/{id}"}, "payload, not an attribute"),
    ],
)
def test_a_key_template_is_checked_in_its_mode(pulumi_mocks, args, problem):
    with pytest.raises(ValueError, match=rf"key_template: .*{problem}"):
        pulumi_mocks.run(lambda: _target(**args))
    assert pulumi_mocks.resources == []


def test_a_batched_template_may_leave_out_id(pulumi_mocks):
    pulumi_mocks.run(lambda: _target(key_template="dt=%F/{type}/", batch={"max_events": 100}))
    assert pulumi_mocks.resources
