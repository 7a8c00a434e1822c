"""`runtime.build`: a runtime's image built from this repository's Dockerfile by Pulumi's
docker-build provider, pushed to the user's registry, and pinned by the pushed digest.

`build_settings` validates (pure, ValueError naming the field); `build_image` declares the one
`docker-build:index:Image` and answers `<registry>/<repository>@sha256:<digest>`. Because the
Deployment names the digest, a change of the runtime's code or requirements is a new digest, hence a
new pod template, hence a rollout; an unchanged build keeps the same digest and changes nothing.
"""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import pulumi
from typing_extensions import NotRequired

# The checkout holding this module: the build context of both Dockerfiles (they COPY runtime/...).
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
DOCKERFILES = {
    "alibaba-oss-target": "runtime/alibaba_oss_target/Dockerfile",
    "relay": "runtime/relay/Dockerfile",
}
# The platforms the release workflow publishes; a build makes one, matching the cluster's nodes.
PLATFORMS = ("linux/amd64", "linux/arm64")
DEFAULT_PLATFORM = "linux/amd64"
FIELDS = ("registry", "repository", "username", "password", "platform", "tag")

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
    """Build the runtime's image from this repository and push it (`runtime.build`)."""

    registry: str
    """Registry address, e.g. `registry.cn-hangzhou.aliyuncs.com` (Alibaba ACR) or
    `ccr.ccs.tencentyun.com` / `<instance>.tencentcloudcr.com` (Tencent TCR)."""
    repository: str
    """Repository inside the registry, e.g. `acme/alibaba-oss-target`."""
    username: NotRequired[pulumi.Input[str]]
    """Registry user; with password. Without both, the build pushes with the credentials of the
    machine running Pulumi (`docker login <registry>`)."""
    password: NotRequired[pulumi.Input[str]]
    """Registry password or token, as a Pulumi secret (kept secret in the state)."""
    platform: NotRequired[str]
    """`linux/amd64` (default) or `linux/arm64`: the cluster nodes' platform."""
    tag: NotRequired[str]
    """Tag pushed with the image (default: the stack name); the Deployment uses the digest."""


@dataclass(frozen=True)
class BuildSettings:
    """Validated `runtime.build` of one runtime."""

    registry: str
    repository: str
    dockerfile: str
    """Path of the Dockerfile, relative to the repository root."""
    platform: str
    tag: str | None
    username: Any = None
    password: Any = None

    @property
    def image_name(self) -> str:
        """`<registry>/<repository>`, the name the digest is appended to."""
        return f"{self.registry}/{self.repository}"


def _fail(field: str, message: str) -> ValueError:
    return ValueError(f"{field}: {message}")


def build_settings(field: str, value: Any, component: str) -> BuildSettings:
    """Validates a `runtime.build` mapping of the runtime `component` (`alibaba-oss-target` or
    `relay`); a ValueError names `<field>.<key>`."""
    if not isinstance(value, Mapping):
        raise _fail(field, "must be a mapping with registry and repository")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise _fail(f"{field}.{unknown[0]}", f"unknown field; known: {', '.join(FIELDS)}")
    if component not in DOCKERFILES:
        raise _fail(field, f"this repository has no Dockerfile for component {component!r}")
    for key in ("registry", "repository"):
        if key not in value:
            raise _fail(f"{field}.{key}", "is required")
    registry, repository = value["registry"], value["repository"]
    if not isinstance(registry, str) or not _REGISTRY.match(registry):
        raise _fail(
            f"{field}.registry",
            f"{registry!r} is not a registry address (host[:port], e.g. "
            "registry.cn-hangzhou.aliyuncs.com; no scheme, no path)",
        )
    if not isinstance(repository, str) or not _REPOSITORY.match(repository):
        raise _fail(
            f"{field}.repository",
            f"{repository!r} is not a repository path (lowercase letters, digits, '.', '_', '-' "
            "in components joined by '/', e.g. acme/alibaba-oss-target)",
        )
    platform = value.get("platform", DEFAULT_PLATFORM)
    if platform not in PLATFORMS:
        raise _fail(f"{field}.platform", f"{platform!r} must be one of {', '.join(PLATFORMS)}")
    tag = value.get("tag")
    if tag is not None and (not isinstance(tag, str) or not _TAG.match(tag)):
        raise _fail(f"{field}.tag", f"{tag!r} is not an image tag (at most 128 of A-Za-z0-9_.-)")
    username, password = value.get("username"), value.get("password")
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise _fail(f"{field}.{missing}", "is required with the other registry credential")
    if isinstance(username, str) and not username:
        raise _fail(f"{field}.username", "must not be empty")
    return BuildSettings(
        registry=registry,
        repository=repository,
        dockerfile=DOCKERFILES[component],
        platform=platform,
        tag=tag,
        username=username,
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
        tags=[f"{s.image_name}:{s.tag or _default_tag()}"],
        registries=registries,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return pulumi.Output.concat(s.image_name, "@", image.digest)
