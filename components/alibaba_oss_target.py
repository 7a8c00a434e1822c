"""AlibabaOssTarget: a private OSS bucket, a put-only writer identity, and the target runtime."""

import dataclasses
from typing import TypedDict

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from . import oss_target_spec as spec
from .container_runtime import ContainerRuntime, RuntimeOptions
from .container_spec import DEFAULT_MEMORY_LIMIT, validate_runtime_options
from .schema import derived, setting, validate

RESOURCE_TYPE = "cloudevents-connectors:index:AlibabaOssTarget"
_COMPONENT = "alibaba-oss-target"
_KEY_ID, _KEY_SECRET = "access-key-id", "access-key-secret"


class CredentialsArgs(TypedDict):
    """How the target authenticates to OSS."""

    mode: NotRequired[str]
    """Plain (decides which identity resources exist): `accessKey` (default), an AccessKey pair in
    a Kubernetes Secret (created put-only RAM user, or access_key_id/access_key_secret); or `rrsa`,
    no key anywhere: on ACK, a RAM role assumed with the pod's projected OIDC token
    (AssumeRoleWithOIDC), refreshed by the runtime."""
    oidc_provider_arn: NotRequired[pulumi.Input[str]]
    """rrsa: the cluster's RAM OIDC provider, `acs:ram::<account>:oidc-provider/ack-rrsa-<id>`."""
    oidc_issuer_url: NotRequired[pulumi.Input[str]]
    """rrsa: the cluster's OIDC issuer URL (`https://oidc-ack-<region>...`, cluster details)."""
    service_account_name: NotRequired[pulumi.Input[str]]
    """rrsa: the ServiceAccount created for the pods (default: the component's name)."""
    ram_role_name: NotRequired[pulumi.Input[str]]
    """rrsa: name of the created RAM role (default `<project>-<stack>-<name>-oss-writer`)."""


class BatchArgs(TypedDict):
    """Rolled objects: many events per NDJSON object (runtime BATCH_* settings)."""

    max_events: pulumi.Input[int]
    """Events per object, 1-1,000,000 (an object rolls when it holds this many)."""
    max_bytes: NotRequired[pulumi.Input[int]]
    """Uncompressed NDJSON bytes per object (default 8 MiB); must fit the pod's in-flight byte
    budget, (memory limit - 112 MiB) / 3, or the pod exits 2 at start-up."""
    max_seconds: NotRequired[pulumi.Input[float]]
    """Seconds after an object's first event before it rolls (default 5)."""
    compression: NotRequired[pulumi.Input[str]]
    """`none` (default), `gzip` or `zstd`."""


class AlibabaOssTargetArgs(TypedDict):
    """Arguments of AlibabaOssTarget. Invalid or conflicting ones raise ValueError before any
    resource exists; a field given as an Output is checked when it resolves (same message). Plain
    fields decide which resources exist; every other field takes an Output."""

    region: pulumi.Input[str]
    """Alibaba Cloud region of the bucket, e.g. `cn-hangzhou`; the OSS endpoint derives from it."""
    bucket_name: pulumi.Input[str]
    """Name of the bucket to create, or of the existing bucket when create_bucket is false."""
    create_bucket: NotRequired[bool]
    """Plain: create the bucket (default true); false uses an existing bucket by name, unmanaged."""
    encryption: NotRequired[str]
    """Plain (decides the KMS grants of the writer's policy): server-side encryption of a created
    bucket, AES256 (default) or KMS."""
    kms_key_id: NotRequired[pulumi.Input[str]]
    """KMS key for encryption KMS (default: the OSS-managed key)."""
    versioning: NotRequired[bool]
    """Plain (shapes the lifecycle rule): turn on versioning of a created bucket (default false)."""
    expiration_days: NotRequired[int]
    """Plain (adds a lifecycle rule): delete stored events after this many days, 1-36500 (default:
    keep)."""
    protect: NotRequired[bool]
    """Plain (a resource option): protect the created bucket from `pulumi destroy` and replacement
    (default false)."""
    force_destroy: NotRequired[pulumi.Input[bool]]
    """Let `pulumi destroy` delete the created bucket with every object in it (default false;
    without it a non-empty bucket fails with BucketNotEmpty)."""
    credentials: NotRequired[CredentialsArgs]
    """accessKey (default) or rrsa; see CredentialsArgs."""
    access_key_id: NotRequired[pulumi.Input[str]]
    """An existing writer's AccessKey ID; with access_key_secret, no RAM user is created."""
    access_key_secret: NotRequired[pulumi.Input[str]]
    """The existing writer's AccessKey secret, as a Pulumi secret."""
    ram_user_name: NotRequired[pulumi.Input[str]]
    """Name of the created RAM user (default `<project>-<stack>-<name>-oss-writer`; RAM names are
    unique per account)."""
    ram_policy_name: NotRequired[pulumi.Input[str]]
    """Name of the created put-only RAM policy (default `<project>-<stack>-<name>-oss-put-only`)."""
    use_internal_endpoint: NotRequired[pulumi.Input[bool]]
    """Write through `oss-<region>-internal.aliyuncs.com` (only from inside Alibaba Cloud)."""
    store: NotRequired[pulumi.Input[str]]
    """`data` (the event's data, default) or `event` (the whole event as structured JSON)."""
    key_prefix: NotRequired[pulumi.Input[str]]
    """Prefix of every object key (default none)."""
    key_template: NotRequired[pulumi.Input[str]]
    """Object key after key_prefix (default `{id}`): `{id}`, `{type}`, `{source}`, `{subject}`,
    `{<extension>}` (values percent-encoded) and strftime fields of the event time in UTC, e.g.
    `dt=%F/{type}/{id}`."""
    batch: NotRequired[BatchArgs]
    """Roll events into NDJSON objects instead of one object per event (default off)."""
    runtime: NotRequired[RuntimeOptions]
    """How the target runs on Kubernetes (image, namespace, replicas, resources, mode...)."""


class AlibabaOssTarget(pulumi.ComponentResource):
    """CloudEvents in, objects out: stores each received event in an Alibaba OSS bucket."""

    bucket_name: pulumi.Output[str]
    """Name of the bucket events are written to."""
    endpoint: pulumi.Output[str]
    """OSS endpoint the target writes through."""
    url: pulumi.Output[str]
    """In-cluster URL to send CloudEvents to."""
    secret_name: pulumi.Output[str | None]
    """Kubernetes Secret holding the writer's key pair (None with RRSA). Auto-named: a new key
    gives a new name, which rolls the pods."""
    role_arn: pulumi.Output[str | None]
    """ARN of the RRSA RAM role (None with an AccessKey)."""

    def __init__(
        self,
        name: str,
        args: AlibabaOssTargetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        args = validate(AlibabaOssTargetArgs, args)
        settings = spec.oss_target_settings(
            name, args, project=pulumi.get_project(), stack=pulumi.get_stack()
        )
        runtime_options = validate_runtime_options(
            "runtime", args.get("runtime") or {}, name, _COMPONENT, spec.DEFAULT_IMAGE
        )
        settings = spec.batch_within_memory(
            settings, setting(runtime_options, "memory_limit", DEFAULT_MEMORY_LIMIT)
        )
        super().__init__(RESOURCE_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        bucket_deps: list[pulumi.Resource] = []
        if settings.create_bucket:
            bucket = _bucket(name, settings, self)
            bucket_deps = [
                bucket,
                alicloud.oss.BucketAcl(
                    f"{name}-bucket-acl", bucket=bucket.bucket, acl="private", opts=child
                ),
                alicloud.oss.BucketPublicAccessBlock(
                    f"{name}-bucket-public-access-block",
                    bucket=bucket.bucket,
                    block_public_access=True,
                    opts=child,
                ),
            ]

        namespace = setting(runtime_options, "namespace", "default")
        connector_args: dict = {"env": spec.runtime_env(settings)}
        runtime_waits: list[pulumi.Resource] = []
        secret_name: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        role_arn: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if settings.rrsa:
            role_arn, identity = _rrsa_identity(name, settings, settings.rrsa, namespace, self)
            # The pods exchange their token for the role at start: the policy must be attached
            # and the ServiceAccount they run as must exist first.
            runtime_waits += identity
            connector_args["pod_identity"] = {
                "service_account_name": settings.rrsa.service_account_name,
                "role_arn": role_arn,
                "oidc_provider_arn": settings.rrsa.oidc_provider_arn,
            }
        else:
            if settings.supplied_key:
                key_id: pulumi.Input[str] = args["access_key_id"]
                key_secret = pulumi.Output.secret(args["access_key_secret"])
            else:
                key_id, key_secret, attachment = _writer_identity(name, settings, self)
                # The key can write only once its policy is attached.
                runtime_waits.append(attachment)
            # No fixed name: new key data replaces the Secret under a new name, the name flows
            # into the pod template, and the pods roll onto the new key.
            credentials = k8s.core.v1.Secret(
                f"{name}-credentials",
                metadata={"namespace": namespace, "labels": {"app.kubernetes.io/instance": name}},
                type="Opaque",
                string_data={_KEY_ID: key_id, _KEY_SECRET: key_secret},
                opts=child,
            )
            secret_name = credentials.metadata.name
            connector_args["secret_env"] = {
                "OSS_ACCESS_KEY_ID": {"secret_name": secret_name, "key": _KEY_ID},
                "OSS_ACCESS_KEY_SECRET": {"secret_name": secret_name, "key": _KEY_SECRET},
            }
        runtime = ContainerRuntime(
            f"{name}-runtime",
            {"runtime": runtime_options},  # type: ignore[typeddict-item]
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*bucket_deps, *runtime_waits]),
            workload={
                **connector_args,  # type: ignore[typeddict-item]
                "app_name": name,
                "component": _COMPONENT,
                "command": ["python", "-m", "runtime.alibaba_oss_target"],
            },
        )

        self.bucket_name = (
            bucket_deps[0].bucket  # type: ignore[attr-defined]
            if bucket_deps
            else pulumi.Output.from_input(settings.bucket_name)
        )
        self.endpoint = pulumi.Output.from_input(settings.endpoint)
        self.url = runtime.url
        self.secret_name = secret_name
        self.role_arn = role_arn
        # Last: marks the component complete and records its outputs in the state.
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "endpoint": self.endpoint,
                "url": self.url,
                "secret_name": self.secret_name,
                "role_arn": self.role_arn,
            }
        )


def _bucket(name: str, s: spec.OssTargetSettings, parent: pulumi.Resource) -> alicloud.oss.Bucket:
    encryption: dict = {"sse_algorithm": s.encryption}
    if s.kms_key_id is not None:
        # An Output resolving to None leaves the key out, as the provider's null does.
        encryption["kms_master_key_id"] = s.kms_key_id
    lifecycle = None
    if s.expiration_days:
        rule: dict = {
            "id": "expire-events",
            "enabled": True,
            "prefix": s.key_prefix,
            "expirations": [{"days": s.expiration_days}],
        }
        if s.versioning:
            # On a versioned bucket an expiration only adds a delete marker; the old versions
            # would stay (and cost) forever without this.
            rule["noncurrent_version_expirations"] = [{"days": s.expiration_days}]
        lifecycle = [rule]
    return alicloud.oss.Bucket(
        f"{name}-bucket",
        bucket=s.bucket_name,
        server_side_encryption_rule=encryption,
        versioning={"status": "Enabled"} if s.versioning else None,
        lifecycle_rules=lifecycle,
        force_destroy=s.force_destroy,
        opts=pulumi.ResourceOptions(parent=parent, protect=s.protect),
    )


def _policy_description(bucket: str) -> str:
    return f"PutObject only, on oss bucket {bucket}"


def _put_only_policy(
    name: str, s: spec.OssTargetSettings, child: pulumi.ResourceOptions
) -> alicloud.ram.Policy:
    """The writer's one permission (`spec.put_only_policy`), whether a user or a role holds it."""
    return alicloud.ram.Policy(
        f"{name}-writer-policy",
        policy_name=s.ram_policy_name,
        policy_document=derived(spec.put_only_policy, s.bucket_name, s.kms_key_id, s.region),
        description=derived(_policy_description, s.bucket_name),
        opts=child,
    )


def _writer_identity(
    name: str, s: spec.OssTargetSettings, parent: pulumi.Resource
) -> tuple[pulumi.Output[str], pulumi.Output[str], pulumi.Resource]:
    """A RAM user that may only put objects into the bucket, and its access key; answers (key id,
    key secret, the policy attachment the pods must wait for)."""
    child = pulumi.ResourceOptions(parent=parent)
    user = alicloud.ram.User(
        f"{name}-writer",
        name=s.ram_user_name,
        comments="Writes CloudEvents into OSS; may only PutObject into one bucket.",
        opts=child,
    )
    policy = _put_only_policy(name, s, child)
    attachment = alicloud.ram.UserPolicyAttachment(
        f"{name}-writer-policy-attachment",
        policy_name=policy.policy_name,
        policy_type="Custom",
        user_name=user.name,
        opts=child,
    )
    key = alicloud.ram.AccessKey(f"{name}-writer-key", user_name=user.name, opts=child)
    return key.id, pulumi.Output.secret(key.secret), attachment


def _rrsa_identity(
    name: str,
    s: spec.OssTargetSettings,
    r: spec.RrsaSettings,
    namespace: pulumi.Input[str],
    parent: pulumi.Resource,
) -> tuple[pulumi.Output[str], list[pulumi.Resource]]:
    """RRSA: a RAM role only this cluster's ServiceAccount may assume, allowed only to put objects
    into the bucket, and the ServiceAccount; answers (the role's ARN, what the pods must wait for:
    the policy attachment and the ServiceAccount)."""
    child = pulumi.ResourceOptions(parent=parent)
    role = alicloud.ram.Role(
        f"{name}-writer-role",
        role_name=r.ram_role_name,
        assume_role_policy_document=derived(
            lambda arn, issuer, account, ns: spec.rrsa_trust_policy(
                dataclasses.replace(
                    r, oidc_provider_arn=arn, oidc_issuer_url=issuer, service_account_name=account
                ),
                ns,
            ),
            r.oidc_provider_arn,
            r.oidc_issuer_url,
            r.service_account_name,
            namespace,
        ),
        description=derived(
            lambda bucket: f"Writes CloudEvents into OSS bucket {bucket} (RRSA)", s.bucket_name
        ),
        opts=child,
    )
    policy = _put_only_policy(name, s, child)
    attachment = alicloud.ram.RolePolicyAttachment(
        f"{name}-writer-policy-attachment",
        policy_name=policy.policy_name,
        policy_type="Custom",
        role_name=role.role_name,
        opts=child,
    )
    account = k8s.core.v1.ServiceAccount(
        f"{name}-service-account",
        metadata={
            "name": r.service_account_name,
            "namespace": namespace,
            # For ACK's pod-identity webhook and for people reading the cluster; the pod spec
            # carries the token volume and the variables itself, so the webhook is not needed.
            "annotations": {spec.ROLE_NAME_ANNOTATION: r.ram_role_name},
            "labels": {"app.kubernetes.io/instance": name},
        },
        automount_service_account_token=False,
        opts=child,
    )
    return role.arn, [attachment, account]
