"""Pure rules of AlibabaOssTarget: argument validation, bucket names, endpoint, the RAM policy."""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_IMAGE = "ghcr.io/cloudevents-connectors/alibaba-oss-target:0.1.0"
ENCRYPTIONS = ("AES256", "KMS")
STORE_MODES = ("data", "event")

# OSS bucket naming rules: 3-63 characters, lowercase letters, digits and hyphens, starting and
# ending with a letter or digit.
_OSS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")
# RAM: user names 1-64 of [A-Za-z0-9._@-]; custom policy names 1-128 of [A-Za-z0-9-].
_RAM_USER = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
_RAM_POLICY = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_ACCESS_KEY_ID = re.compile(r"^[A-Za-z0-9]{16,128}$")

OPTIONS = (
    "region",
    "bucket_name",
    "create_bucket",
    "encryption",
    "kms_key_id",
    "versioning",
    "expiration_days",
    "protect",
    "access_key_id",
    "access_key_secret",
    "ram_user_name",
    "ram_policy_name",
    "use_internal_endpoint",
    "store",
    "key_prefix",
    "runtime",
)


@dataclass(frozen=True)
class OssTargetSettings:
    region: str
    bucket_name: str
    create_bucket: bool
    encryption: str
    kms_key_id: str | None
    versioning: bool
    expiration_days: int | None
    protect: bool
    supplied_key: bool
    ram_user_name: str
    ram_policy_name: str
    endpoint: str
    store: str
    key_prefix: str


def validate_bucket_name(name: Any, field: str = "bucket_name") -> str:
    if not isinstance(name, str) or not _OSS_BUCKET.match(name):
        raise ValueError(
            f"{field}: {name!r} is not a valid OSS bucket name (3-63 lowercase letters, digits "
            "or '-', starting and ending with a letter or digit)"
        )
    return name


def oss_endpoint(region: str, internal: bool = False) -> str:
    """HTTPS endpoint of OSS in `region`; the internal one is reachable only from Alibaba Cloud."""
    return f"https://oss-{region}{'-internal' if internal else ''}.aliyuncs.com"


def put_only_policy(bucket_name: str) -> str:
    """RAM policy document allowing exactly PutObject on the objects of one bucket."""
    document = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:PutObject"],
                "Resource": [f"acs:oss:*:*:{bucket_name}/*"],
            }
        ],
    }
    return json.dumps(document, separators=(",", ":"))


def _bool(args: Mapping[str, Any], field: str, default: bool) -> bool:
    value = args.get(field, default)
    if not isinstance(value, bool):
        raise ValueError(f"{field}: {value!r} must be true or false")
    return value


def oss_target_settings(name: str, args: Mapping[str, Any]) -> OssTargetSettings:
    """Validates AlibabaOssTargetArgs; a ValueError names the bad or conflicting field."""
    unknown = sorted(set(args) - set(OPTIONS))
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown argument")
    region = args.get("region")
    if not isinstance(region, str) or not _REGION.match(region):
        raise ValueError(f"region: {region!r} is not an Alibaba Cloud region id (e.g. cn-hangzhou)")
    bucket = validate_bucket_name(args.get("bucket_name"))
    create_bucket = _bool(args, "create_bucket", True)
    if not create_bucket:
        for field in ("encryption", "kms_key_id", "versioning", "expiration_days", "protect"):
            if field in args:
                raise ValueError(f"{field}: applies only to a bucket this component creates")
    encryption = args.get("encryption", "AES256")
    if encryption not in ENCRYPTIONS:
        raise ValueError(f"encryption: {encryption!r} must be one of {', '.join(ENCRYPTIONS)}")
    kms_key_id = args.get("kms_key_id")
    if kms_key_id is not None:
        if encryption != "KMS":
            raise ValueError("kms_key_id: needs encryption KMS")
        if not isinstance(kms_key_id, str) or not kms_key_id:
            raise ValueError("kms_key_id: must be a KMS key id")
    expiration_days = args.get("expiration_days")
    if expiration_days is not None and (
        isinstance(expiration_days, bool)
        or not isinstance(expiration_days, int)
        or not 1 <= expiration_days <= 36500
    ):
        raise ValueError(
            f"expiration_days: {expiration_days!r} must be a whole number of days >= 1"
        )
    has_id, has_secret = "access_key_id" in args, "access_key_secret" in args
    if has_id != has_secret:
        missing = "access_key_secret" if has_id else "access_key_id"
        raise ValueError(f"{missing}: an existing key pair needs both access_key_id and the secret")
    if has_id:
        key_id = args["access_key_id"]
        if not isinstance(key_id, str) or not _ACCESS_KEY_ID.match(key_id):
            raise ValueError("access_key_id: is not an AccessKey ID (letters and digits)")
        if isinstance(args["access_key_secret"], str):
            raise ValueError("access_key_secret: pass it as a secret (pulumi.Output.secret)")
        for field in ("ram_user_name", "ram_policy_name"):
            if field in args:
                raise ValueError(f"{field}: conflicts with a supplied access key")
    ram_user = args.get("ram_user_name", f"{name}-oss-writer")
    if not isinstance(ram_user, str) or not _RAM_USER.match(ram_user):
        raise ValueError(
            f"ram_user_name: {ram_user!r} is not a RAM user name (1-64 of A-Za-z0-9._@-)"
        )
    ram_policy = args.get("ram_policy_name", f"{name}-oss-put-only")
    if not isinstance(ram_policy, str) or not _RAM_POLICY.match(ram_policy):
        raise ValueError(
            f"ram_policy_name: {ram_policy!r} is not a RAM policy name (1-128 of A-Za-z0-9-)"
        )
    store = args.get("store", "data")
    if store not in STORE_MODES:
        raise ValueError(f"store: {store!r} must be one of {', '.join(STORE_MODES)}")
    key_prefix = args.get("key_prefix", "")
    if (
        not isinstance(key_prefix, str)
        or key_prefix.startswith(("/", "\\"))
        or len(key_prefix) > 512
    ):
        raise ValueError(
            "key_prefix: must be a string of at most 512 characters not starting with /"
        )
    return OssTargetSettings(
        region=region,
        bucket_name=bucket,
        create_bucket=create_bucket,
        encryption=encryption,
        kms_key_id=kms_key_id,
        versioning=_bool(args, "versioning", False),
        expiration_days=expiration_days,
        protect=_bool(args, "protect", False),
        supplied_key=has_id,
        ram_user_name=ram_user,
        ram_policy_name=ram_policy,
        endpoint=oss_endpoint(region, _bool(args, "use_internal_endpoint", False)),
        store=store,
        key_prefix=key_prefix,
    )


def runtime_env(s: OssTargetSettings) -> dict[str, str]:
    """Plain settings of `python -m runtime.alibaba_oss_target` (credentials come from a Secret)."""
    env = {
        "OSS_ENDPOINT": s.endpoint,
        "OSS_BUCKET": s.bucket_name,
        "OSS_REGION": s.region,
        "STORE": s.store,
    }
    if s.key_prefix:
        env["OSS_KEY_PREFIX"] = s.key_prefix
    return env
