"""Pulumi ComponentResources of the CloudEvents connectors.

`from components import AlibabaOssTarget, TencentCosSource, ContainerRuntime` (and their Args) is
the public API; `__main__.py` uses exactly these classes.
"""

from components.alibaba_oss_target import AlibabaOssTarget, AlibabaOssTargetArgs
from components.container_runtime import (
    ContainerRuntime,
    ContainerRuntimeArgs,
    RuntimeOptions,
    SecretKeyRef,
)
from components.tencent_cos_source import (
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
    "GatewayArgs",
    "RelayArgs",
    "RuntimeOptions",
    "SecretKeyRef",
    "TencentCosSource",
    "TencentCosSourceArgs",
]
