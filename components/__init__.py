"""Pulumi ComponentResources of the CloudEvents connectors.

`from cloudevents_connectors import AlibabaOssTarget, TencentCosSource, ContainerRuntime` (and
their Args) is the public API of the installed package; in this repository the same classes are
`components.*`, which `__main__.py` uses.
"""

from .alibaba_oss_target import AlibabaOssTarget, AlibabaOssTargetArgs, CredentialsArgs
from .container_runtime import (
    ContainerRuntime,
    ContainerRuntimeArgs,
    PodIdentityArgs,
    RuntimeOptions,
    SecretKeyRef,
)
from .image_build import ImageBuild
from .tencent_cos_source import (
    FunctionArgs,
    FunctionVpcArgs,
    GatewayArgs,
    RelayArgs,
    TencentCosSource,
    TencentCosSourceArgs,
)

__all__ = [
    "AlibabaOssTarget",
    "AlibabaOssTargetArgs",
    "ContainerRuntime",
    "ContainerRuntimeArgs",
    "CredentialsArgs",
    "FunctionArgs",
    "FunctionVpcArgs",
    "GatewayArgs",
    "ImageBuild",
    "PodIdentityArgs",
    "RelayArgs",
    "RuntimeOptions",
    "SecretKeyRef",
    "TencentCosSource",
    "TencentCosSourceArgs",
]
