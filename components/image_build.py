"""`runtime.build`: a runtime's image built from this repository's Dockerfile by Pulumi's
docker-build provider, pushed to the user's registry, and pinned by the pushed digest.

`build_settings` validates (pure, ValueError naming the field); `build_image` declares the one
`docker-build:index:Image` and answers `<registry>/<repository>@sha256:<digest>`. Because the
Deployment names the digest, a change of the runtime's code or requirements is a new digest, hence a
new pod template, hence a rollout; an unchanged build keeps the same digest and changes nothing.
"""

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pulumi
from typing_extensions import NotRequired

from .schema import checked, is_output, setting

# The checkout holding this module: the build context of both Dockerfiles (they COPY runtime/...).
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {
    "alibaba-oss-target": "runtime/alibaba_oss_target/Dockerfile",
    "relay": "runtime/relay/Dockerfile",
}
# The platforms the release workflow publishes; a build makes one, matching the cluster's nodes.
PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_PLATFORM = "linux/amd64"

# The image reference grammar of distribution/reference (regexp.go): a registry is a host name or
# IPv4 address with an optional port; a repository is lowercase path components joined by `/`, each
# alphanumerics separated by `.`, `_`, `__` or dashes; a tag is at most 128 of `[A-Za-z0-9_.-]`,
# not starting with `.` or `-`.
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY = re.compile(rf"^{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?$")
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"^{_PATH_PART}(?:/{_PATH_PART})*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")


class ImageBuild(TypedDict):
    """Build the runtime's image from this repository and push it (`runtime.build`). Every field
    may be an Output; it is checked when it resolves."""

    registry: pulumi.Input[str]
    """Registry address, e.g. `registry.cn-hangzhou.aliyuncs.com` (Alibaba ACR) or
    `ccr.ccs.tencentyun.com` / `<instance>.tencentcloudcr.com` (Tencent TCR)."""
    repository: pulumi.Input[str]
    """Repository inside the registry, e.g. `acme/alibaba-oss-target`."""
    username: NotRequired[pulumi.Input[str]]
    """Registry user; with password. Both also make a kubernetes.io/dockerconfigjson Secret the
    pods pull with (imagePullSecrets). Without both, the build pushes with the credentials of the
    machine running Pulumi (`docker login <registry>`) and the nodes must pull by themselves."""
    password: NotRequired[pulumi.Input[str]]
    """Registry password or token, as a Pulumi secret (kept secret in the state). In a stack file:
    the secret key `ossTargetRegistryPassword` / `cosSourceRelayRegistryPassword`."""
    platform: NotRequired[pulumi.Input[str]]
    """`linux/amd64` (default) or `linux/arm64`: the cluster nodes' platform."""
    tag: NotRequired[pulumi.Input[str]]
    """Tag pushed with the image (default: the stack name); the Deployment uses the digest."""


@dataclass(frozen=True)
class BuildSettings:
    """Validated `runtime.build` of one runtime; a field given as an Output stays one."""

    registry: Any
    repository: Any
    dockerfile: str
    """Path of the Dockerfile, relative to the repository root."""
    platform: Any
    tag: Any
    username: Any = None
    password: Any = None

    @property
    def image_name(self) -> Any:
        """`<registry>/<repository>`, the name the digest is appended to (an Output when either
        part is one)."""
        if is_output(self.registry) or is_output(self.repository):
            return pulumi.Output.concat(self.registry, "/", self.repository)
        return f"{self.registry}/{self.repository}"


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"{field}: {message}")


def _registry(field: str, registry: str) -> str:
    if not _REGISTRY.match(registry):
        raise _fail(
            field,
            f"{registry!r} is not a registry address (host[:port], e.g. "
            "registry.cn-hangzhou.aliyuncs.com; no scheme, no path)",
        )
    return registry


def _repository(field: str, repository: str) -> str:
    if not _REPOSITORY.match(repository):
        raise _fail(
            field,
            f"{repository!r} is not a repository path (lowercase letters, digits, '.', '_', '-' "
            "in components joined by '/', e.g. acme/alibaba-oss-target)",
        )
    return repository


def _platform(field: str, platform: str) -> str:
    if platform not in PLATFORMS:
        raise _fail(field, f"{platform!r} must be one of {', '.join(PLATFORMS)}")
    return platform


def _tag(field: str, tag: str) -> str:
    if not _TAG.match(tag):
        raise _fail(field, f"{tag!r} is not an image tag (at most 128 of A-Za-z0-9_.-)")
    return tag


def _username(field: str, username: str) -> str:
    if not username:
        raise _fail(field, "must not be empty")
    return username


def build_settings(field: str, value: Any, component: str) -> BuildSettings:
    """Applies the rules to a `runtime.build` (already checked against ImageBuild's schema) of the
    runtime `component` (`alibaba-oss-target` or `relay`); a ValueError names `<field>.<key>`.
    The reference grammar is distribution/reference's (see the patterns above); Output values are
    checked when they resolve, with the same messages."""
    if component not in DOCKERFILES:
        raise _fail(field, f"this repository has no Dockerfile for component {component!r}")
    username, password = value.get("username"), value.get("password")
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise _fail(f"{field}.{missing}", "is required with the other registry credential")
    tag = value.get("tag")

    def rule(key: str, fn: Any, given: Any) -> Any:
        return checked(given, lambda v: fn(f"{field}.{key}", v))

    return BuildSettings(
        registry=rule("registry", _registry, value["registry"]),
        repository=rule("repository", _repository, value["repository"]),
        dockerfile=DOCKERFILES[component],
        platform=rule("platform", _platform, setting(value, "platform", DEFAULT_PLATFORM)),
        tag=None if tag is None else rule("tag", _tag, tag),
        username=None if username is None else rule("username", _username, username),
        password=password,
    )


def context_location() -> str:
    """The repository root as docker-build's context: relative to the working directory (the
    Pulumi project folder) when it can be, so every checkout declares the same inputs and only a
    change of the files themselves rebuilds."""
    try:
        return os.path.relpath(REPOSITORY_ROOT, Path.cwd())
    except ValueError:  # another drive (Windows): no relative path exists
        return str(REPOSITORY_ROOT)


def _default_tag() -> str:
    tag = re.sub(r"[^\w.-]", "-", pulumi.get_stack())
    return tag if _TAG.match(tag) else "latest"


def build_image(name: str, s: BuildSettings, parent: pulumi.Resource) -> pulumi.Output[str]:
    """Declares `<name>-image` (docker-build Image, built and pushed) as a child of `parent`;
    answers the pushed image by digest, `<registry>/<repository>@sha256:<hex>`."""
    import pulumi_docker_build as docker_build

    context = context_location()
    registries = None
    if s.password is not None:
        registries = [
            {
                "address": s.registry,
                "username": s.username,
                "password": pulumi.Output.secret(s.password),
            }
        ]
    image = docker_build.Image(
        f"{name}-image",
        context={"location": context},
        dockerfile={"location": os.path.join(context, s.dockerfile)},
        platforms=[s.platform],
        push=True,
        tags=[pulumi.Output.concat(s.image_name, ":", s.tag or _default_tag())],
        registries=registries,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.concat(s.image_name, "@", image.digest)


def docker_config_json(registry: str, username: str, password: str) -> str:
    """The `.dockerconfigjson` of a kubernetes.io/dockerconfigjson Secret for one registry
    (Kubernetes, "Pull an Image from a Private Registry"): `auths.<registry>` with username,
    password and `auth` = base64 of `username:password`."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    entry = {"username": username, "password": password, "auth": auth}
    return json.dumps({"auths": {registry: entry}}, sort_keys=True)
