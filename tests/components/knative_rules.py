"""What Knative Serving's admission webhook refuses in a revision template, as a checker.

kubernetes-validate knows only the core Pod schema, so these rules are written down here from
knative/serving `pkg/apis/serving/fieldmask.go` (the allowed fields) and `k8s_validation.go`
(reserved names, ports), with Knative's default feature flags (config-features).
"""

from typing import Any

# PodSpecMask: the pod fields a revision may set without a feature flag.
_POD_FIELDS = {
    "serviceAccountName",
    "containers",
    "volumes",
    "imagePullSecrets",
    "enableServiceLinks",
    "automountServiceAccountToken",  # only `false` is kept
}
# ContainerMask.
_CONTAINER_FIELDS = {
    "name",
    "args",
    "command",
    "env",
    "workingDir",
    "envFrom",
    "image",
    "imagePullPolicy",
    "livenessProbe",
    "ports",
    "readinessProbe",
    "resources",
    "securityContext",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
}
_RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
_PORT_NAMES = {"", "http1", "h2c"}
# Volume sources: secret, configMap and projected always; emptyDir is on by default since 1.0.
_VOLUME_SOURCES = {"secret", "configMap", "projected", "emptyDir"}


def admission_errors(service: dict[str, Any]) -> list[str]:
    """Every reason the webhook would refuse this `serving.knative.dev/v1` Service ([] = none)."""
    errors = []
    pod = service.get("spec", {}).get("template", {}).get("spec", {})
    for key in sorted(set(pod) - _POD_FIELDS):
        errors.append(f"spec.template.spec.{key}: not allowed in a revision")
    if pod.get("automountServiceAccountToken") is True:
        errors.append("spec.template.spec.automountServiceAccountToken: only false is allowed")
    for volume in pod.get("volumes", []):
        sources = set(volume) - {"name"}
        if not sources <= _VOLUME_SOURCES:
            errors.append(f"volume {volume.get('name')}: source {sorted(sources)} not allowed")
    containers = pod.get("containers", [])
    serving_ports = []
    for container in containers:
        name = container.get("name", "")
        for key in sorted(set(container) - _CONTAINER_FIELDS):
            errors.append(f"container {name}: {key} not allowed")
        for env in container.get("env", []):
            if env.get("name") in _RESERVED_ENV:
                errors.append(f"container {name}: env {env['name']} is reserved")
        ports = container.get("ports", [])
        serving_ports += ports
        for port in ports:
            if port.get("name", "") not in _PORT_NAMES:
                errors.append(f"container {name}: port name {port['name']!r} must be http1 or h2c")
    if len(serving_ports) != 1:
        errors.append(f"exactly one container port is served, found {len(serving_ports)}")
    return errors
