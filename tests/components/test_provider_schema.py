"""The multi-language package: PulumiPlugin.yaml's entry point and the schema Pulumi infers from
the components (what a TypeScript, Go, C# or YAML program sees after `pulumi package add`)."""

import json
import typing
from pathlib import Path

import pulumi
import pytest
import yaml
from pulumi.provider.experimental.component import ComponentProvider

from cloudevents_connectors import __main__ as provider
from components import (
    AlibabaOssTargetArgs,
    ContainerRuntimeArgs,
    CredentialsArgs,
    FunctionArgs,
    FunctionVpcArgs,
    GatewayArgs,
    ImageBuild,
    RelayArgs,
    RuntimeOptions,
    TencentCosSourceArgs,
)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cloudevents-connectors:index:"
ARGS = [
    AlibabaOssTargetArgs,
    ContainerRuntimeArgs,
    CredentialsArgs,
    FunctionArgs,
    FunctionVpcArgs,
    GatewayArgs,
    ImageBuild,
    RelayArgs,
    RuntimeOptions,
    TencentCosSourceArgs,
]
# Python-only knobs: keyword arguments of the classes, never fields of the public schema.
INTERNAL = {"packageDir", "command", "env", "secretEnv", "appName", "component", "podIdentity"}


@pytest.fixture(scope="module")
def schema() -> dict:
    return json.loads(
        ComponentProvider(provider.components(), provider.PACKAGE, None, provider.VERSION).schema
    )


def _properties(schema: dict):
    """(owner, name, property) of every input property and every type property."""
    for token, resource in schema["resources"].items():
        for name, prop in resource["inputProperties"].items():
            yield token, name, prop
    for token, typ in schema["types"].items():
        for name, prop in typ["properties"].items():
            yield token, name, prop


def test_plugin_manifest_runs_this_provider():
    manifest = yaml.safe_load((ROOT / "PulumiPlugin.yaml").read_text())
    assert manifest["runtime"]["name"] == "python"
    assert (ROOT / manifest["main"]).resolve() == Path(provider.__file__).resolve()


def test_resources_and_required_inputs(schema):
    resources = schema["resources"]
    assert set(resources) == {
        f"{TOKEN}{c}" for c in ("AlibabaOssTarget", "TencentCosSource", "ContainerRuntime")
    }
    required = {token: set(r.get("requiredInputs", [])) for token, r in resources.items()}
    assert required == {
        f"{TOKEN}AlibabaOssTarget": {"region", "bucketName"},
        f"{TOKEN}TencentCosSource": {"region", "bucketName"},
        f"{TOKEN}ContainerRuntime": {"runtime"},
    }
    assert all(r["isComponent"] for r in resources.values())
    assert set(resources[f"{TOKEN}AlibabaOssTarget"]["properties"]) == {
        "bucketName",
        "endpoint",
        "url",
        "secretName",
        "roleArn",
    }
    assert {f"{TOKEN}{t.__name__}" for t in ARGS if t not in (AlibabaOssTargetArgs,)} - {
        f"{TOKEN}{n}" for n in ("ContainerRuntimeArgs", "TencentCosSourceArgs")
    } <= set(schema["types"])


def test_inputs_are_not_plain_and_plain_fields_say_why(schema):
    """A field typed pulumi.Input takes an Output from any language; a plain one decides which
    resources exist, and its docstring starts with 'Plain' to say so."""
    types = {**schema["types"]}
    seen = {"input": 0, "plain": 0}
    for args in ARGS:
        token = f"{TOKEN}{args.__name__}"
        owner = types.get(token) or next(
            r
            for t, r in schema["resources"].items()
            if args.__name__ == f"{t.removeprefix(TOKEN)}Args"
        )
        props = owner.get("inputProperties") or owner["properties"]
        hints = typing.get_type_hints(args, localns={"Output": pulumi.Output, "T": typing.Any})
        for field, annotation in hints.items():
            camel = field.split("_")[0] + "".join(p.title() for p in field.split("_")[1:])
            prop = props[camel]
            inner = typing.get_args(annotation)
            is_input = any(typing.get_origin(a) is pulumi.Output for a in inner)
            if is_input:
                assert not prop.get("plain"), f"{token}.{camel} is an Input but plain"
                assert "Plain" not in prop["description"].split(":")[0], f"{token}.{camel}"
                seen["input"] += 1
            elif prop.get("type") in ("string", "boolean", "integer", "array"):
                assert prop.get("plain") is True, f"{token}.{camel}"
                assert prop["description"].startswith("Plain"), f"{token}.{camel} says not why"
                seen["plain"] += 1
    # Strings, URLs, names, regions, images, sizes: Inputs; create/mode/kind switches: plain.
    assert seen["input"] >= 40 and 8 <= seen["plain"] <= 15, seen


def test_every_property_and_output_has_a_description(schema):
    missing = [f"{o}.{n}" for o, n, p in _properties(schema) if not p.get("description")]
    for token, resource in schema["resources"].items():
        missing += [
            f"{token}.{n}" for n, p in resource["properties"].items() if not p.get("description")
        ]
        assert resource.get("description"), token
    assert not missing


def test_internal_knobs_are_not_in_the_public_schema(schema):
    names = {name for _, name, _ in _properties(schema)}
    assert not names & INTERNAL
