"""Helpers shared by the component tests."""

from components.check.engine import MockEngine, Registration, unwrap

COMPONENT_PREFIX = "cloudevents-connectors:index:"


def names_by_type(engine: MockEngine, urn: str) -> set[tuple[str, str]]:
    """(type, name) of every resource under `urn`, at any depth."""
    return {(r.typ, r.name) for r in engine.descendants_of(urn)}


def urn_parent_type(urn: str) -> str:
    """The parent's type recorded in a URN (`...::<ParentType>$<Type>::<name>`)."""
    qualified_type = urn.split("::")[2]
    return qualified_type.split("$")[-2] if "$" in qualified_type else ""


def kubernetes_manifest(registration: Registration) -> dict:
    """The object as it would be sent to the API server: recorded inputs, secrets unwrapped, floats
    that are whole numbers back to ints (the wire carries numbers as floats)."""

    def fix(value):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    manifest = fix(unwrap(registration.inputs))
    manifest.setdefault("metadata", {}).setdefault("name", registration.name)
    return manifest


def kubernetes_objects(engine: MockEngine) -> list[Registration]:
    return [
        r
        for r in engine.resources
        if r.custom and r.typ.startswith("kubernetes:") and not r.typ.startswith("pulumi:")
    ]
