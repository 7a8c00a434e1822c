"""AlibabaOssTarget: a private OSS bucket, a put-only writer identity, and the target runtime."""

from typing import TypedDict

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from components import oss_target_spec as spec
from components.container_runtime import ContainerRuntime, RuntimeOptions
from components.container_spec import validate_runtime_options

RESOURCE_TYPE = "cloudevents-connectors:index:AlibabaOssTarget"
_COMPONENT = "alibaba-oss-target"
_KEY_ID, _KEY_SECRET = "access-key-id", "access-key-secret"


class AlibabaOssTargetArgs(TypedDict):
    """Arguments of AlibabaOssTarget. Invalid or conflicting ones raise ValueError first."""

    region: str
    """Alibaba Cloud region of the bucket, e.g. `cn-hangzhou`; the OSS endpoint derives from it."""
    bucket_name: str
    """Name of the bucket to create, or of the existing bucket when create_bucket is false."""
    create_bucket: NotRequired[bool]
    """Create the bucket (default true); false uses an existing bucket by name, unmanaged."""
    encryption: NotRequired[str]
    """Server-side encryption of a created bucket: AES256 (default) or KMS."""
    kms_key_id: NotRequired[str]
    """KMS key for encryption KMS (default: the OSS-managed key)."""
    versioning: NotRequired[bool]
    """Turn on versioning of a created bucket (default false)."""
    expiration_days: NotRequired[int]
    """Delete stored events after this many days (lifecycle rule on key_prefix; default: keep)."""
    protect: NotRequired[bool]
    """Protect the created bucket from `pulumi destroy` and replacement (default false)."""
    access_key_id: NotRequired[str]
    """An existing writer's AccessKey ID; with access_key_secret, no RAM user is created."""
    access_key_secret: NotRequired[pulumi.Input[str]]
    """The existing writer's AccessKey secret, as a Pulumi secret."""
    ram_user_name: NotRequired[str]
    """Name of the created RAM user (default `<name>-oss-writer`)."""
    ram_policy_name: NotRequired[str]
    """Name of the created put-only RAM policy (default `<name>-oss-put-only`)."""
    use_internal_endpoint: NotRequired[bool]
    """Write through `oss-<region>-internal.aliyuncs.com` (only from inside Alibaba Cloud)."""
    store: NotRequired[str]
    """`data` (the event's data, default) or `event` (the whole event as structured JSON)."""
    key_prefix: NotRequired[str]
    """Prefix of every object key (default none)."""
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
    secret_name: pulumi.Output[str]
    """Kubernetes Secret holding the writer's key pair."""

    def __init__(
        self,
        name: str,
        args: AlibabaOssTargetArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        settings = spec.oss_target_settings(name, args)
        runtime_options = validate_runtime_options(
            "runtime", args.get("runtime") or {}, name, _COMPONENT, spec.DEFAULT_IMAGE
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

        if settings.supplied_key:
            key_id: pulumi.Input[str] = args["access_key_id"]
            key_secret = pulumi.Output.secret(args["access_key_secret"])
        else:
            key_id, key_secret = _writer_identity(name, settings, self)

        namespace = runtime_options.get("namespace", "default")
        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"name": f"{name}-oss-credentials", "namespace": namespace},
            type="Opaque",
            string_data={_KEY_ID: key_id, _KEY_SECRET: key_secret},
            opts=child,
        )
        runtime = ContainerRuntime(
            f"{name}-runtime",
            {
                **runtime_options,  # type: ignore[typeddict-item]
                "app_name": name,
                "component": _COMPONENT,
                "command": ["python", "-m", "runtime.alibaba_oss_target"],
                "env": spec.runtime_env(settings),
                "secret_env": {
                    "OSS_ACCESS_KEY_ID": {"secret_name": credentials.metadata.name, "key": _KEY_ID},
                    "OSS_ACCESS_KEY_SECRET": {
                        "secret_name": credentials.metadata.name,
                        "key": _KEY_SECRET,
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=bucket_deps),
        )

        self.bucket_name = (
            bucket_deps[0].bucket  # type: ignore[attr-defined]
            if bucket_deps
            else pulumi.Output.from_input(settings.bucket_name)
        )
        self.endpoint = pulumi.Output.from_input(settings.endpoint)
        self.url = runtime.url
        self.secret_name = credentials.metadata.name
        # Last: marks the component complete and records its outputs in the state.
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "endpoint": self.endpoint,
                "url": self.url,
                "secret_name": self.secret_name,
            }
        )


def _bucket(name: str, s: spec.OssTargetSettings, parent: pulumi.Resource) -> alicloud.oss.Bucket:
    encryption: dict = {"sse_algorithm": s.encryption}
    if s.kms_key_id:
        encryption["kms_master_key_id"] = s.kms_key_id
    lifecycle = None
    if s.expiration_days:
        lifecycle = [
            {
                "id": "expire-events",
                "enabled": True,
                "prefix": s.key_prefix,
                "expirations": [{"days": s.expiration_days}],
            }
        ]
    return alicloud.oss.Bucket(
        f"{name}-bucket",
        bucket=s.bucket_name,
        server_side_encryption_rule=encryption,
        versioning={"status": "Enabled"} if s.versioning else None,
        lifecycle_rules=lifecycle,
        opts=pulumi.ResourceOptions(parent=parent, protect=s.protect),
    )


def _writer_identity(
    name: str, s: spec.OssTargetSettings, parent: pulumi.Resource
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """A RAM user that may only put objects into the bucket, and its access key."""
    child = pulumi.ResourceOptions(parent=parent)
    user = alicloud.ram.User(
        f"{name}-writer",
        name=s.ram_user_name,
        comments="Writes CloudEvents into OSS; may only PutObject into one bucket.",
        opts=child,
    )
    policy = alicloud.ram.Policy(
        f"{name}-writer-policy",
        policy_name=s.ram_policy_name,
        policy_document=spec.put_only_policy(s.bucket_name),
        description=f"PutObject only, on oss bucket {s.bucket_name}",
        opts=child,
    )
    alicloud.ram.UserPolicyAttachment(
        f"{name}-writer-policy-attachment",
        policy_name=policy.policy_name,
        policy_type="Custom",
        user_name=user.name,
        opts=child,
    )
    key = alicloud.ram.AccessKey(f"{name}-writer-key", user_name=user.name, opts=child)
    return key.id, pulumi.Output.secret(key.secret)
