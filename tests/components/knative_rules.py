"""What Knative Serving's admission webhook refuses in a revision template, as a checker.

kubernetes-validate knows only the core Pod schema, so these rules are written down here from
knative/serving at commit 98e5ef9 (2026-08): `pkg/apis/serving/fieldmask.go` (the fields a
revision may set) and `pkg/apis/serving/k8s_validation.go` (reserved names, paths and ports, mount
rules), with the default feature flags of `pkg/apis/config/features.go` (every podspec-* flag off
except kubernetes.podspec-volumes-emptydir; secure-pod-defaults off).
"""

import posixpath
from typing import Any

# PodSpecMask with default flags.
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
    "startupProbe",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "volumeMounts",
}
# SecurityContextMask (container level); `privileged` only as false, capabilities.add needs a flag.
_SECURITY_CONTEXT_FIELDS = {
    "capabilities",
    "readOnlyRootFilesystem",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "seccompProfile",
    "privileged",
}
_RESERVED_ENV = {"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
_RESERVED_PATHS = {"/", "/dev", "/dev/log"}
# networking.BackendHTTPPort, BackendHTTP2Port, QueueAdminPort, the two metrics ports, profiling.
_RESERVED_PORTS = {8012, 8013, 8022, 9090, 9091, 8008}
_PORT_NAMES = {"", "http1", "h2c"}
# VolumeSourceMask with default flags; VolumeProjectionMask.
_VOLUME_SOURCES = {"secret", "configMap", "projected", "emptyDir"}
_PROJECTION_SOURCES = {"secret", "configMap", "serviceAccountToken", "downwardAPI"}


def _container_errors(container: dict[str, Any], volumes: dict[str, dict]) -> list[str]:
    name = container.get("name", "")
    errors = [
        f"container {name}: {k} not allowed" for k in sorted(set(container) - _CONTAINER_FIELDS)
    ]
    for env in container.get("env", []):
        if env.get("name") in _RESERVED_ENV:
            errors.append(f"container {name}: env {env['name']} is reserved")
    security = container.get("securityContext") or {}
    for key in sorted(set(security) - _SECURITY_CONTEXT_FIELDS):
        errors.append(f"container {name}: securityContext.{key} not allowed")
    if security.get("privileged") is True:
        errors.append(f"container {name}: securityContext.privileged may only be false")
    if (security.get("capabilities") or {}).get("add"):
        errors.append(f"container {name}: capabilities.add needs a feature flag")
    for port in container.get("ports", []):
        if port.get("name", "") not in _PORT_NAMES:
            errors.append(f"container {name}: port name {port['name']!r} must be http1 or h2c")
        if port.get("containerPort") in _RESERVED_PORTS:
            errors.append(f"container {name}: port {port['containerPort']} is reserved")
    seen = set()
    for mount in container.get("volumeMounts", []):
        path = posixpath.normpath(mount.get("mountPath", ""))
        if path in _RESERVED_PATHS:
            errors.append(f"container {name}: mountPath {path} is reserved")
        if not path.startswith("/") or path in seen:
            errors.append(f"container {name}: mountPath {path} must be absolute and unique")
        seen.add(path)
        volume = volumes.get(mount.get("name"))
        if volume is None:
            errors.append(f"container {name}: volumeMount {mount.get('name')} has no volume")
        elif "emptyDir" not in volume and not mount.get("readOnly"):
            errors.append(f"container {name}: volumeMount {mount['name']} must be readOnly")
    return errors


def admission_errors(service: dict[str, Any]) -> list[str]:
    """Every reason the webhook would refuse this `serving.knative.dev/v1` Service ([] = none)."""
    errors = []
    pod = service.get("spec", {}).get("template", {}).get("spec", {})
    for key in sorted(set(pod) - _POD_FIELDS):
        errors.append(f"spec.template.spec.{key}: not allowed in a revision")
    if pod.get("automountServiceAccountToken") is True:
        errors.append("spec.template.spec.automountServiceAccountToken: only false is allowed")
    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    mounted = {m.get("name") for c in pod.get("containers", []) for m in c.get("volumeMounts", [])}
    for volume_name, volume in volumes.items():
        sources = set(volume) - {"name"}
        if len(sources) != 1 or not sources <= _VOLUME_SOURCES:
            errors.append(f"volume {volume_name}: source {sorted(sources)} not allowed")
        for source in (volume.get("projected") or {}).get("sources", []):
            if len(source) != 1 or not set(source) <= _PROJECTION_SOURCES:
                errors.append(f"volume {volume_name}: projection {sorted(source)} not allowed")
            if "serviceAccountToken" in source and not source["serviceAccountToken"].get("path"):
                errors.append(f"volume {volume_name}: serviceAccountToken needs a path")
        if volume_name not in mounted:
            errors.append(f"volume {volume_name}: not mounted")
    containers = pod.get("containers", [])
    for container in containers:
        errors += _container_errors(container, volumes)
    ports = [p for c in containers for p in c.get("ports", [])]
    if len(ports) != 1:
        errors.append(f"exactly one container port is served, found {len(ports)}")
    return errors
