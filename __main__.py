"""The Pulumi program: stack config -> explicit providers -> components -> exports. Wiring only.

A connector whose block (`ossTarget`, `cosSource`) is absent or empty is not deployed. Cloud
credentials come from the providers' environment variables (ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY,
TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY, KUBECONFIG); see README.md, Credentials.
"""

from typing import Any

import pulumi
import pulumi_alicloud as alicloud
import pulumi_kubernetes as k8s
import tencentcloud_iac_pulumi as tencentcloud

from components import AlibabaOssTarget, TencentCosSource
from components.stack_config import (
    COS_SOURCE_NAME,
    OSS_TARGET_NAME,
    StackConfig,
    read_stack_config,
)


def deploy(config: StackConfig, prefix: str = "") -> dict[str, Any]:
    """Declares the configured connectors; answers the stack outputs. `prefix` keeps names apart
    when one program declares several pairs (the benchmark does)."""
    outputs: dict[str, Any] = {}
    needs_cluster = config.oss_target is not None or (
        config.cos_source is not None and "relay" in config.cos_source
    )
    cluster: list[pulumi.ProviderResource] = []
    depends_on: list[pulumi.Resource] = []
    if needs_cluster:
        kube = config.kubernetes
        provider = k8s.Provider(
            f"{prefix}kubernetes",
            context=kube.context,
            kubeconfig=kube.kubeconfig,
            namespace=kube.namespace,
            # Replace (never patch) a Secret whose data changes, whatever PULUMI_K8S_ENABLE_SECRET_
            # MUTABLE says: the replacement's new name is what rolls the pods onto a rotated key.
            enable_secret_mutable=False,
        )
        cluster = [provider]
        if kube.create_namespace:
            depends_on.append(
                k8s.core.v1.Namespace(
                    f"{prefix}namespace",
                    metadata={
                        "name": kube.namespace,
                        "labels": {"app.kubernetes.io/part-of": "cloudevents-connectors"},
                    },
                    opts=pulumi.ResourceOptions(provider=provider),
                )
            )

    if config.oss_target is not None:
        region = config.oss_target["region"]
        alibaba = alicloud.Provider(f"{prefix}alicloud", region=region)
        target = AlibabaOssTarget(
            f"{prefix}{OSS_TARGET_NAME}",
            config.oss_target,  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(providers=[alibaba, *cluster], depends_on=depends_on),
        )
        outputs.update(
            ossTargetBucket=target.bucket_name,
            ossTargetEndpoint=target.endpoint,
            ossTargetUrl=target.url,
            ossTargetSecretName=target.secret_name,
            ossTargetRoleArn=target.role_arn,
        )

    if config.cos_source is not None:
        tencent = tencentcloud.Provider(f"{prefix}tencentcloud", region=config.cos_source["region"])
        source = TencentCosSource(
            f"{prefix}{COS_SOURCE_NAME}",
            # The zip goes to ~/.cache/cloudevents-connectors, declared with `~`: the same string
            # from every checkout, so CI and laptops agree and only new code redeploys.
            config.cos_source,  # type: ignore[arg-type]
            opts=pulumi.ResourceOptions(providers=[tencent, *cluster], depends_on=depends_on),
        )
        outputs.update(
            cosSourceBucket=source.bucket_name,
            cosSourceFunction=source.function_name,
            cosSourceFunctionNamespace=source.function_namespace,
            cosSourceTriggers=source.trigger_descriptions,
            cosSourceRelayUrl=source.relay_url,
        )
    return outputs


def main() -> None:
    try:
        config = read_stack_config(pulumi.Config())
    except ValueError as error:
        # RunError: Pulumi prints the message alone, without a Python stack trace.
        raise pulumi.RunError(f"stack {pulumi.get_stack()}: {error}") from None
    for name, value in deploy(config).items():
        pulumi.export(name, value)


# Pulumi runs this file as __main__; the benchmark loads it under another name to call deploy().
if __name__ == "__main__":
    main()
