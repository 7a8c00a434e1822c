"""ContainerRuntime: one connector runtime on Kubernetes, as a Deployment or a Knative Service."""

import dataclasses
from typing import Any, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from typing_extensions import NotRequired

from . import container_spec as spec
from .image_build import ImageBuild, build_image, docker_config_json
from .schema import setting, validate

RESOURCE_TYPE = "cloudevents-connectors:index:ContainerRuntime"


class SecretKeyRef(TypedDict):
    """A key of a Kubernetes Secret in the runtime's namespace."""

    secret_name: pulumi.Input[str]
    """Name of the Secret."""
    key: str
    """Key inside the Secret."""


class PodIdentityArgs(TypedDict):
    """RRSA on ACK: the pod's service account and the RAM role its OIDC token is exchanged for."""

    service_account_name: pulumi.Input[str]
    """ServiceAccount the pod runs as (it must exist; the trust policy names it)."""
    role_arn: pulumi.Input[str]
    """ARN of the RAM role (ALIBABA_CLOUD_ROLE_ARN)."""
    oidc_provider_arn: pulumi.Input[str]
    """ARN of the cluster's RAM OIDC provider (ALIBABA_CLOUD_OIDC_PROVIDER_ARN)."""


class RuntimeOptions(TypedDict, total=False):
    """How a connector's runtime runs; every field is optional. Plain (they decide which objects
    exist): `mode`. Every other field may be an Output; it is checked when it resolves."""

    image: pulumi.Input[str]
    """Container image. Each connector has its own default (see README.md, Configuration)."""
    image_pull_policy: pulumi.Input[str]
    """Always, IfNotPresent (default) or Never."""
    namespace: pulumi.Input[str]
    """Namespace of every object (default `default`); it must exist (see README.md, Using the
    components from your own program)."""
    min_replicas: pulumi.Input[int]
    """Lowest replica count (default 1); the autoscaler (HPA or Knative) scales from here."""
    max_replicas: pulumi.Input[int]
    """Highest replica count (default: min_replicas)."""
    target_cpu_utilization: pulumi.Input[int]
    """Average CPU utilisation, in percent of the request, the autoscaler aims for (default 70)."""
    cpu_request: pulumi.Input[str]
    """CPU request (default 100m)."""
    cpu_limit: pulumi.Input[str]
    """CPU limit (default 500m)."""
    memory_request: pulumi.Input[str]
    """Memory request (default 128Mi)."""
    memory_limit: pulumi.Input[str]
    """Memory limit (default 256Mi)."""
    drain_timeout_seconds: pulumi.Input[int]
    """How long the runtime drains in-flight events on SIGTERM (default 20); the pod's grace period
    is this plus 10 seconds."""
    log_level: pulumi.Input[str]
    """DEBUG, INFO (default), WARNING or ERROR."""
    mode: str
    """Plain: `deployment` (Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget;
    default) or `knative` (a Knative Serving Service; the Knative CRDs must exist)."""
    run_as_user: pulumi.Input[int]
    """Numeric user (and group) the container runs as (default 10001; never root)."""
    build: ImageBuild
    """Build the runtime's image from this repository's Dockerfile with Pulumi's docker-build
    provider, push it and run it by digest, so a change of the runtime's code rolls the pods
    (instead of `image`; the two conflict)."""


class ContainerRuntimeArgs(TypedDict):
    """Arguments of ContainerRuntime: how the runtime runs and how it is reached."""

    runtime: RuntimeOptions
    """How the runtime runs; `image` or `build` is required here (the connectors fill in their
    own image)."""
    service_type: NotRequired[str]
    """Plain: ClusterIP (default) or LoadBalancer (reachable from outside the cluster). With
    Knative, ClusterIP adds the cluster-local visibility label and LoadBalancer leaves the service
    public."""
    create_namespace: NotRequired[bool]
    """Plain: create the namespace instead of using an existing one (default false). Then
    `runtime.namespace` is required and may not be one of Kubernetes' own (`default`,
    `kube-system`, `kube-public`, `kube-node-lease`)."""


class WorkloadArgs(TypedDict, total=False):
    """What a connector decides about its container; not part of the public (multi-language)
    schema: the connectors pass it to ContainerRuntime as the `workload` keyword."""

    command: list[str]
    """Command of the container, e.g. `["python", "-m", "runtime.relay"]` (default: the image's)."""
    env: dict[str, pulumi.Input[str]]
    """Plain environment variables. Never secrets: those go in secret_env."""
    secret_env: dict[str, SecretKeyRef]
    """Environment variables read from Secret keys (secretKeyRef), so no secret is a literal."""
    app_name: str
    """Name of every Kubernetes object and `app.kubernetes.io/instance` (default: resource name)."""
    component: str
    """`app.kubernetes.io/name` and `/component` label, e.g. `relay` (default: app_name)."""
    pod_identity: PodIdentityArgs
    """Run as this ServiceAccount with a projected STS-audience token and the ALIBABA_CLOUD_*
    variables of RRSA (default: no service account token at all)."""


class ContainerRuntime(pulumi.ComponentResource):
    """A connector runtime: non-root, read-only, probed, drained, autoscaled."""

    namespace: pulumi.Output[str]
    """Namespace the runtime runs in."""
    service_name: pulumi.Output[str]
    """Name of the Service (Kubernetes or Knative) in front of the runtime."""
    url: pulumi.Output[str]
    """In-cluster URL, `http://<service>.<namespace>.svc.cluster.local`."""
    public_url: pulumi.Output[str | None]
    """URL from outside the cluster: the LoadBalancer's address; None for ClusterIP and Knative."""

    def __init__(
        self,
        name: str,
        args: ContainerRuntimeArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        workload: WorkloadArgs | None = None,
    ) -> None:
        args = validate(ContainerRuntimeArgs, args)
        workload = validate(WorkloadArgs, workload or {})
        options = args["runtime"]
        app_name = workload.get("app_name", name)
        settings = spec.runtime_settings(
            app_name,
            workload.get("component", app_name),
            {**options, "service_type": setting(args, "service_type", "ClusterIP"), **workload},
            options_at="runtime.",
        )
        create_namespace = setting(args, "create_namespace", False)
        if create_namespace:
            if options.get("namespace") is None:
                raise ValueError(
                    "runtime.namespace: is required with create_namespace (the namespace to "
                    "create; `default` is Kubernetes' own)"
                )
            created = spec.created_namespace("runtime.namespace", settings.namespace)
            settings = dataclasses.replace(settings, namespace=created)
        super().__init__(RESOURCE_TYPE, name, None, opts)

        # Pulumi does not pass a component's depends_on to its children: the objects that start
        # pods wait for what the caller named (a bucket, a RAM policy attachment, a
        # ServiceAccount) themselves.
        waits = _resources(opts.depends_on if opts else None)
        child = pulumi.ResourceOptions(parent=self, depends_on=waits)
        if settings.build is not None:
            image = build_image(name, settings.build, self)
            settings = dataclasses.replace(settings, image=image)
        if create_namespace:
            ns = k8s.core.v1.Namespace(
                f"{name}-namespace",
                metadata={"name": settings.namespace, "labels": spec.labels(settings)},
                opts=child,
            )
            child = pulumi.ResourceOptions(parent=self, depends_on=[*waits, ns])

        if settings.build is not None and settings.build.password is not None:
            # The kubelet pulls the pushed image with the same registry credentials; an
            # auto-named Secret, so new credentials roll the pods like a rotated key.
            b = settings.build
            pull_secret = k8s.core.v1.Secret(
                f"{name}-registry-credentials",
                metadata={"namespace": settings.namespace, "labels": spec.labels(settings)},
                type="kubernetes.io/dockerconfigjson",
                string_data={
                    ".dockerconfigjson": pulumi.Output.secret(
                        pulumi.Output.all(b.registry, b.username, b.password).apply(
                            lambda v: docker_config_json(*v)
                        )
                    )
                },
                opts=child,
            )
            settings = dataclasses.replace(settings, image_pull_secret=pull_secret.metadata.name)

        if settings.mode == "knative":
            k8s.apiextensions.CustomResource(
                f"{name}-knative-service",
                api_version="serving.knative.dev/v1",
                kind="Service",
                metadata=spec.knative_metadata(settings),
                spec=spec.knative_service_spec(settings),
                opts=child,
            )
            # Knative's external URL depends on the cluster's domain setup, unknown here.
            public_url = pulumi.Output.from_input(None)
        else:
            meta = spec.metadata(settings)
            k8s.apps.v1.Deployment(
                f"{name}-deployment", metadata=meta, spec=spec.deployment_spec(settings), opts=child
            )
            service = k8s.core.v1.Service(
                f"{name}-service", metadata=meta, spec=spec.service_spec(settings), opts=child
            )
            k8s.autoscaling.v2.HorizontalPodAutoscaler(
                f"{name}-hpa", metadata=meta, spec=spec.hpa_spec(settings), opts=child
            )
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb", metadata=meta, spec=spec.pdb_spec(settings), opts=child
            )
            public_url = (
                service.status.apply(_load_balancer_url)
                if settings.service_type == "LoadBalancer"
                else pulumi.Output.from_input(None)
            )

        self.namespace = pulumi.Output.from_input(settings.namespace)  # type: ignore[arg-type]
        self.service_name = pulumi.Output.from_input(settings.app_name)
        self.url = pulumi.Output.from_input(spec.cluster_url(settings))
        self.public_url = public_url
        # Last: tells the engine the component is complete and records its outputs in the state.
        self.register_outputs(
            {
                "namespace": self.namespace,
                "service_name": self.service_name,
                "url": self.url,
                "public_url": self.public_url,
            }
        )


def _resources(depends_on: Any) -> list[pulumi.Resource]:
    """ResourceOptions.depends_on (one Resource, a list of them, or None) as a list."""
    if depends_on is None:
        return []
    if isinstance(depends_on, pulumi.Resource):
        return [depends_on]
    return [r for r in depends_on if isinstance(r, pulumi.Resource)]


def _load_balancer_url(status) -> str | None:
    ingress = (status and status.load_balancer and status.load_balancer.ingress) or []
    for entry in ingress:
        host = entry.hostname or entry.ip
        if host:
            return f"http://{host}"
    return None
