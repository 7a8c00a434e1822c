"""Reads a stack file and checks it against the project's config declarations, as the CLI does.

Rules (from the Pulumi CLI's project config handling): every key in the project's namespace must be
declared in Pulumi.yaml; a typed key's value must have that type; a key declared `secret: true` must
be encrypted (`secure:`) in the stack file; a declared key without a default must be set.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - stands in for ciphertext we cannot read
# Secrets whose form the components check once they resolve get a well-formed stand-in instead,
# so an encrypted (unreadable) value is not mistaken for a malformed one.
SECRET_STAND_INS = {
    "cosSourceRelaySigningSecret": "whsec_" + "A" * 43 + "=",  # 32 zero bytes, base64
}


class StackFileError(ValueError):
    """The stack file or the project file is unusable; the message says where and why."""


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    declarations: dict[str, dict[str, Any]]
    stack_config_dir: Path
    main: Path


@dataclass(frozen=True)
class StackValues:
    """Config of one stack with the project's defaults applied."""

    values: dict[str, Any]
    """Key (without the project prefix) -> value, defaults applied, secrets left out."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Secret keys set in the stack file -> a placeholder (their ciphertext cannot be read here)."""
    other: dict[str, Any] = field(default_factory=dict)
    """Keys of other namespaces (e.g. `alicloud:region`), as written."""
    secret_objects: list[str] = field(default_factory=list)
    """Object keys holding an encrypted value (`pulumi config set --secret --path`): in `values`
    with a placeholder there, and secret as a whole, as Pulumi treats them."""


def _placeholders(value: Any) -> tuple[Any, bool]:
    """`value` with each `{secure: ...}` inside replaced by the placeholder; and whether any was."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        pairs = {k: _placeholders(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_placeholders(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def load_project(root: Path) -> Project:
    path = root / "Pulumi.yaml"
    if not path.is_file():
        raise StackFileError(
            f"{path}: not found (run from the project folder or pass --project-dir)"
        )
    data = yaml.safe_load(path.read_text()) or {}
    declarations = data.get("config") or {}
    normalised = {}
    for key, declaration in declarations.items():
        # A bare value is shorthand for a default of that value.
        normalised[key] = declaration if isinstance(declaration, dict) else {"default": declaration}
    main = root / (data.get("main") or ".")
    return Project(
        name=data["name"],
        root=root,
        declarations=normalised,
        stack_config_dir=root / (data.get("stackConfigDir") or "."),
        main=main / "__main__.py" if main.is_dir() else main,
    )


def stack_path(project: Project, stack: str) -> Path:
    path = project.stack_config_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = sorted(
            p.name[len("Pulumi.") : -len(".yaml")]
            for p in project.stack_config_dir.glob("Pulumi.*.yaml")
        )
        raise StackFileError(f"{path}: no such stack file (stacks: {', '.join(known) or 'none'})")
    return path


def _type_ok(type_name: str, value: Any) -> bool:
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and value.lstrip("-").isdigit()
        )
    if type_name == "boolean":
        return isinstance(value, bool) or value in ("true", "false")
    if type_name == "array":
        return isinstance(value, list)
    return True


def read_stack(project: Project, stack: str) -> StackValues:
    path = stack_path(project, stack)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise StackFileError(f"{path}: not valid YAML: {error}") from None
    config = data.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path}: `config` must be a mapping")
    prefix = f"{project.name}:"
    values: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    other: dict[str, Any] = {}
    secret_objects: list[str] = []
    for full_key, value in config.items():
        if ":" in full_key and not full_key.startswith(prefix):
            other[full_key] = value
            continue
        key = full_key.removeprefix(prefix)
        declaration = project.declarations.get(key)
        if declaration is None:
            raise StackFileError(
                f"{path}: {full_key} is not declared in Pulumi.yaml (declared: "
                f"{', '.join(sorted(project.declarations))})"
            )
        is_secure = isinstance(value, dict) and set(value) == {"secure"}
        if declaration.get("secret") and not is_secure:
            raise StackFileError(
                f"{path}: {full_key} is a secret and must be encrypted; remove it and run "
                f"`pulumi config set --secret {key} <value> --stack {stack}`"
            )
        if is_secure:
            secrets[key] = SECRET_STAND_INS.get(key, SECRET_PLACEHOLDER)
            continue
        type_name = declaration.get("type")
        if type_name and not _type_ok(type_name, value):
            raise StackFileError(f"{path}: {full_key} must be of type {type_name}")
        value, has_secret = _placeholders(value)
        if has_secret:
            secret_objects.append(key)
        values[key] = value
    for key, declaration in project.declarations.items():
        if key in values or key in secrets:
            continue
        if "default" not in declaration and "value" not in declaration:
            raise StackFileError(f"{path}: {prefix}{key} is required (no default in Pulumi.yaml)")
        default = declaration.get("default", declaration.get("value"))
        if declaration.get("secret"):
            if default:
                secrets[key] = default
            continue
        values[key] = default
    return StackValues(values, secrets, other, secret_objects)


def engine_config(project: Project, stack_values: StackValues) -> tuple[dict[str, str], list[str]]:
    """The config map and secret keys a program sees at run time (objects as JSON strings)."""
    config: dict[str, str] = {}
    for key, value in stack_values.values.items():
        config[f"{project.name}:{key}"] = (
            json.dumps(value) if isinstance(value, (dict, list)) else _scalar(value)
        )
    for key, value in stack_values.secrets.items():
        config[f"{project.name}:{key}"] = value
    for key, value in stack_values.other.items():
        if not (isinstance(value, dict) and "secure" in value):
            config[key] = json.dumps(value) if isinstance(value, (dict, list)) else _scalar(value)
    secret_keys = [*stack_values.secrets, *stack_values.secret_objects]
    return config, [f"{project.name}:{key}" for key in secret_keys]


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
