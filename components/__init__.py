"""Pulumi ComponentResources of the CloudEvents connectors.

`from components import AlibabaOssTarget, TencentCosSource, ContainerRuntime` (and their Args) is
the public API; `__main__.py` uses exactly these classes.
"""

from .alibaba_oss_target import AlibabaOssTarget, AlibabaOssTargetArgs, CredentialsArgs
from .container_runtime import (
    ContainerRuntime,
    ContainerRuntimeArgs,
    PodIdentityArgs,
    RuntimeOptions,
    SecretKeyRef,
)
from .tencent_cos_source import (
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
    "FunctionVpcArgs",
    "GatewayArgs",
    "PodIdentityArgs",
    "RelayArgs",
    "RuntimeOptions",
    "SecretKeyRef",
    "TencentCosSource",
    "TencentCosSourceArgs",
]
