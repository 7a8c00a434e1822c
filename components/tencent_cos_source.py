"""TencentCosSource: COS bucket notifications turned into CloudEvents by an SCF function."""

from pathlib import Path
from typing import TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import tencentcloud_iac_pulumi as tencentcloud
from typing_extensions import NotRequired

from . import cos_source_spec as spec
from .container_runtime import ContainerRuntime, RuntimeOptions
from .schema import derived, setting, validate

RESOURCE_TYPE = "cloudevents-connectors:index:TencentCosSource"
# Written as is into `zip_file`: the provider expands `~` itself (homedir.Expand), so every checkout
# and every machine declares the same path, and only a code change (a new hash) redeploys.
DEFAULT_PACKAGE_DIR = "~/.cache/cloudevents-connectors"


class GatewayArgs(TypedDict):
    """A Vanus gateway destination (the seed's `target` and `eventbus`)."""

    target: pulumi.Input[str]
    """Gateway address, `host:port` or an http(s) URL."""
    eventbus: pulumi.Input[str]
    """Eventbus name."""
    api: NotRequired[str]
    """Plain (decides the function's variables): `gateway` (`/gateway/<eventbus>`, default) or
    `namespaces` (Vanus >= 0.7 path)."""
    namespace: NotRequired[pulumi.Input[str]]
    """Vanus namespace with api `namespaces` (default `default`)."""


class RelayArgs(TypedDict):
    """Relay destination: SCF posts signed events to a public relay forwarding them in-cluster."""

    sink_url: pulumi.Input[str]
    """In-cluster eventbus URL the relay forwards to (its K_SINK), e.g. a Knative Broker's
    `status.address.url`."""
    public_url: NotRequired[pulumi.Input[str]]
    """Public URL of the relay when exposed by your own ingress (then the Service is ClusterIP;
    whether it is given decides that, its value may be an Output); default: a LoadBalancer
    Service's address."""
    signing_secret: NotRequired[pulumi.Input[str]]
    """Standard Webhooks secret `whsec_<base64>`, as a Pulumi secret (default: generated)."""
    runtime: NotRequired[RuntimeOptions]
    """How the relay runs on Kubernetes."""


class FunctionVpcArgs(TypedDict):
    """VPC placement of the SCF function, for a sink inside a VPC (e.g. a Vanus gateway)."""

    vpc_id: pulumi.Input[str]
    """VPC id, `vpc-xxxxxxxx`."""
    subnet_id: pulumi.Input[str]
    """Subnet id in that VPC, `subnet-xxxxxxxx`."""


class FunctionArgs(TypedDict, total=False):
    """The SCF function; every field is optional."""

    name: pulumi.Input[str]
    """SCF function name (default `<project>-<stack>-<resource name>`, so two stacks in one account
    and region never share a function)."""
    namespace: pulumi.Input[str]
    """Existing SCF namespace of the function (default `default`)."""
    memory_mb: pulumi.Input[int]
    """Function memory in MB: a multiple of 128 up to 3072 (default 128)."""
    timeout_seconds: pulumi.Input[int]
    """Function timeout, 1-900 seconds (default 30)."""
    public_network: pulumi.Input[bool]
    """Internet access of the function (default true: the sink is on the internet); false only
    with vpc."""
    vpc: FunctionVpcArgs
    """Place the function in a VPC (default: none)."""
    retry_attempts: pulumi.Input[int]
    """Async retries SCF makes after a failed invocation, 0-2 (default 2, SCF's own)."""
    max_event_age_seconds: pulumi.Input[int]
    """How long SCF keeps an undelivered event for retries, 60-21600 s (default 21600, 6 h)."""


class TencentCosSourceArgs(TypedDict):
    """Arguments of TencentCosSource. Invalid or conflicting ones raise ValueError before any
    resource exists; a field given as an Output is checked when it resolves (same message). Plain
    fields decide which resources exist; every other field takes an Output. Exactly one destination:
    sink_url, gateway or relay."""

    region: pulumi.Input[str]
    """Tencent Cloud region of the bucket and the function, e.g. `ap-guangzhou`."""
    bucket_name: pulumi.Input[str]
    """BucketName without the APPID; the bucket is `<bucket_name>-<appid>`."""
    app_id: NotRequired[pulumi.Input[str]]
    """Account APPID (10 digits); default: looked up with the `tencentcloud:User/getInfo:getInfo`
    invoke on the provider's credentials (unit-test mocks must answer it)."""
    create_bucket: NotRequired[bool]
    """Plain: create the bucket, private and AES256-encrypted (default true); false: use an
    existing one."""
    protect: NotRequired[bool]
    """Plain (a resource option): protect the created bucket from `pulumi destroy` and replacement
    (default false)."""
    versioning: NotRequired[pulumi.Input[bool]]
    """Turn on versioning of a created bucket (default false)."""
    function: NotRequired[FunctionArgs]
    """The SCF function: name, namespace, memory, timeout, network, retries."""
    force_destroy: NotRequired[pulumi.Input[bool]]
    """Let `pulumi destroy` empty and delete the created bucket (default false)."""
    debug: NotRequired[pulumi.Input[bool]]
    """DEBUG_MODE of the function: logs each delivered event (default false)."""
    events: NotRequired[list[str]]
    """Plain (one trigger each): COS events (default `["cos:ObjectCreated:*"]`)."""
    prefix: NotRequired[pulumi.Input[str]]
    """Only objects whose key starts with this (default: all)."""
    suffix: NotRequired[pulumi.Input[str]]
    """Only objects whose key ends with this; must start with `.` (default: all)."""
    sink_url: NotRequired[pulumi.Input[str]]
    """Destination: a CloudEvents URL reachable from SCF (K_SINK)."""
    gateway: NotRequired[GatewayArgs]
    """Destination: a Vanus gateway and eventbus."""
    relay: NotRequired[RelayArgs]
    """Destination: a relay in Kubernetes forwarding to an in-cluster eventbus."""
    delivery_timeout_seconds: NotRequired[pulumi.Input[int]]
    """Per-request delivery timeout of the function, 1-900 (runtime default 10)."""
    delivery_retry_budget_seconds: NotRequired[pulumi.Input[int]]
    """How long the function retries a delivery; must be below function.timeout_seconds."""


class TencentCosSource(pulumi.ComponentResource):
    """Turns COS object notifications into CloudEvents delivered to a sink."""

    bucket_name: pulumi.Output[str]
    """The bucket id `<name>-<appid>`."""
    function_name: pulumi.Output[str]
    """SCF function name."""
    function_namespace: pulumi.Output[str]
    """SCF namespace of the function."""
    code_path: pulumi.Output[str]
    """`zip_file` as declared: `<package_dir>/tencent-cos-source-<hash>.zip`."""
    trigger_descriptions: pulumi.Output[list[str]]
    """TriggerDesc JSON of each COS trigger."""
    relay_url: pulumi.Output[str | None]
    """Public URL of the relay (None without a relay)."""

    def __init__(
        self,
        name: str,
        args: TencentCosSourceArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        package_dir: str = DEFAULT_PACKAGE_DIR,
    ) -> None:
        """`package_dir`: where the function's zip is written, as declared to the provider
        (default `~/.cache/cloudevents-connectors`); keep it the same string on every machine
        (`~` is expanded by the provider), or each checkout redeploys identical code. Python
        only: not part of the multi-language schema."""
        args = validate(TencentCosSourceArgs, args)
        settings = spec.cos_source_settings(
            name, args, project=pulumi.get_project(), stack=pulumi.get_stack()
        )
        if not isinstance(package_dir, str) or not package_dir:
            raise ValueError("package_dir: must be a folder path")
        super().__init__(RESOURCE_TYPE, name, None, opts)

        app_id = settings.app_id or _lookup_app_id(self)
        bucket_id = derived(spec.bucket_full_name, settings.bucket_short_name, app_id)
        depends_on: list[pulumi.Resource] = []
        if settings.create_bucket:
            bucket = tencentcloud.cos.Bucket(
                f"{name}-bucket",
                bucket=bucket_id,
                acl="private",
                encryption_algorithm="AES256",
                versioning_enable=settings.versioning,
                force_clean=settings.force_destroy,
                opts=pulumi.ResourceOptions(parent=self, protect=settings.protect),
            )
            depends_on.append(bucket)

        env: dict[str, pulumi.Input[str]] = dict(spec.function_env(settings))
        relay_url: pulumi.Output[str | None] = pulumi.Output.from_input(None)
        if settings.relay:
            relay_url, signing_secret = _relay(name, args["relay"], settings.relay, self)
            env["K_SINK"] = relay_url  # type: ignore[assignment]
            env["SINK_SIGNING_SECRET"] = signing_secret

        descriptions = spec.triggers(
            bucket_id, settings.region, settings.events, settings.prefix, settings.suffix
        )
        code_path = _function_package(package_dir)
        placement: dict = {"enable_public_net": settings.public_network}
        if settings.vpc:
            placement.update(vpc_id=settings.vpc.vpc_id, subnet_id=settings.vpc.subnet_id)
        function = tencentcloud.scf.Function(
            f"{name}-function",
            name=settings.function_name,
            namespace=settings.function_namespace,
            description=spec.FUNCTION_DESCRIPTION,
            runtime=spec.FUNCTION_RUNTIME,
            handler=spec.FUNCTION_HANDLER,
            # A path: the provider uploads the file, Pulumi diffs the name, which carries the hash.
            zip_file=code_path,
            mem_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            environment=env,
            triggers=descriptions,
            **placement,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on),
        )
        # COS invokes asynchronously: after a failed invocation SCF retries (the handler's event ids
        # are stable, so a retry never duplicates), then drops the event. SDK 0.2.3 offers no
        # dead-letter target on the function, so none is set.
        tencentcloud.scf.FunctionEventInvokeConfig(
            f"{name}-invoke-config",
            function_name=function.name,
            namespace=settings.function_namespace,
            async_trigger_config={
                "retry_configs": [{"retry_num": settings.retry_attempts}],
                "msg_ttl": settings.max_event_age_seconds,
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

        self.bucket_name = pulumi.Output.from_input(bucket_id)
        self.function_name = function.name
        self.function_namespace = pulumi.Output.from_input(settings.function_namespace)
        self.code_path = pulumi.Output.from_input(code_path)
        self.trigger_descriptions = pulumi.Output.from_input(
            [t["trigger_desc"] for t in descriptions]
        )
        self.relay_url = relay_url
        # Last: marks the component complete and records its outputs in the state.
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "function_name": self.function_name,
                "function_namespace": self.function_namespace,
                "code_path": self.code_path,
                "trigger_descriptions": self.trigger_descriptions,
                "relay_url": self.relay_url,
            }
        )


def _function_package(package_dir: str) -> str:
    """Writes the zip under `package_dir` (with `~` expanded) and answers its path as declared:
    `package_dir` exactly as given, so the string is the same on every machine."""
    # Built at program run time (never inside apply), so preview and up see the same file name.
    from .packaging import build_function_package

    written = build_function_package(Path(package_dir).expanduser())
    return f"{package_dir.rstrip('/')}/{written.name}"


def _lookup_app_id(parent: pulumi.Resource) -> str:
    info = tencentcloud.user.get_info(opts=pulumi.InvokeOptions(parent=parent))
    return spec.validate_app_id(info.app_id, "app_id (looked up)")


def _relay(
    name: str, args: RelayArgs, s: spec.RelaySettings, parent: pulumi.Resource
) -> tuple[pulumi.Output[str], pulumi.Output[str]]:
    """The relay's Secret and runtime; answers (public URL, signing secret)."""
    child = pulumi.ResourceOptions(parent=parent)
    if s.supplied_secret:
        # Checked when it resolves (it is a secret, so never known at construction).
        signing_secret = pulumi.Output.secret(args["signing_secret"]).apply(
            spec.check_signing_secret
        )
    else:
        key = random.RandomBytes(f"{name}-relay-signing-key", length=32, opts=child)
        signing_secret = pulumi.Output.secret(pulumi.Output.concat("whsec_", key.base64))
    options = s.runtime
    namespace = setting(options, "namespace", "default")  # checked by the ContainerRuntime
    secret = k8s.core.v1.Secret(
        f"{name}-relay-signing-secret",
        # No fixed name: a new secret replaces the Secret under a new name, which flows into the
        # pod template and rolls the relay onto it (a fixed name would leave pods on the old one).
        metadata={
            "namespace": namespace,
            "labels": {"app.kubernetes.io/instance": f"{name}-relay"},
        },
        type="Opaque",
        string_data={spec.SIGNING_ENTRY: signing_secret},
        opts=child,
    )
    runtime = ContainerRuntime(
        f"{name}-relay",
        {
            "runtime": options,  # type: ignore[typeddict-item]
            "service_type": "ClusterIP" if s.public_url is not None else "LoadBalancer",
        },
        opts=child,
        workload={
            "app_name": f"{name}-relay",
            "component": "relay",
            "command": ["python", "-m", "runtime.relay"],
            "env": {"K_SINK": s.sink_url},
            "secret_env": {
                "RELAY_SIGNING_SECRET": {
                    "secret_name": secret.metadata.name,
                    "key": spec.SIGNING_ENTRY,
                }
            },
        },
    )
    public_url = (
        pulumi.Output.from_input(s.public_url)
        if s.public_url is not None
        else runtime.public_url.apply(lambda url: f"{url}/" if url else url)
    )
    return public_url, signing_secret
