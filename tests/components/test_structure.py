"""Structure of the components: token, Args/outputs documented, children parented to the
component, register_outputs last (AST), and the same seen at run time under the mocks."""

import ast
import json
import sys
import typing
from pathlib import Path

import pulumi
import pytest

import components
from components import AlibabaOssTarget, ContainerRuntime, TencentCosSource

COMPONENTS_DIR = Path(components.__file__).parent
COMPONENT_MODULES = sorted(
    p
    for p in COMPONENTS_DIR.glob("*.py")
    if any(
        isinstance(n, ast.ClassDef)
        and any(ast.unparse(b) == "pulumi.ComponentResource" for b in n.bases)
        for n in ast.parse(p.read_text()).body
    )
)
CLASSES = [ContainerRuntime, AlibabaOssTarget, TencentCosSource]


def _component_classes(tree: ast.Module) -> list[ast.ClassDef]:
    return [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(base) == "pulumi.ComponentResource" for base in node.bases)
    ]


def _init(cls: ast.ClassDef) -> ast.FunctionDef:
    return next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")


def test_the_three_components_live_in_their_own_files():
    assert [p.name for p in COMPONENT_MODULES] == [
        "alibaba_oss_target.py",
        "container_runtime.py",
        "tencent_cos_source.py",
    ]
    for path in COMPONENT_MODULES:
        assert len(_component_classes(ast.parse(path.read_text()))) == 1, path.name


@pytest.mark.parametrize("path", COMPONENT_MODULES, ids=lambda p: p.name)
def test_no_postponed_annotations(path):
    # Pulumi's component-provider schema inference cannot read string annotations.
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            pytest.fail(f"{path.name}: from __future__ import {node.names[0].name}")


@pytest.mark.parametrize("path", COMPONENT_MODULES, ids=lambda p: p.name)
def test_register_outputs_is_the_last_statement(path):
    (cls,) = _component_classes(ast.parse(path.read_text()))
    last = _init(cls).body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call), ast.unparse(last)
    assert ast.unparse(last.value.func) == "self.register_outputs"


@pytest.mark.parametrize("path", COMPONENT_MODULES, ids=lambda p: p.name)
def test_super_init_comes_after_validation_and_before_children(path):
    (cls,) = _component_classes(ast.parse(path.read_text()))
    body = _init(cls).body
    calls = [ast.unparse(s) for s in body]
    super_index = next(i for i, c in enumerate(calls) if c.startswith("super().__init__("))
    assert "RESOURCE_TYPE, name, None, opts" in calls[super_index]
    # Everything before registration is validation of plain values; no resource is created there.
    for statement in body[:super_index]:
        for node in ast.walk(statement):
            if isinstance(node, ast.keyword):
                assert node.arg != "opts", ast.unparse(statement)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_type_token_and_documented_args_and_outputs(cls):
    module = __import__(cls.__module__, fromlist=["RESOURCE_TYPE"])
    assert f"cloudevents-connectors:index:{cls.__name__}" == module.RESOURCE_TYPE
    tree = ast.parse(Path(module.__file__).read_text())
    documented = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            fields = node.body
            for i, item in enumerate(fields):
                if isinstance(item, ast.AnnAssign):
                    following = fields[i + 1] if i + 1 < len(fields) else None
                    documented[(node.name, item.target.id)] = isinstance(
                        following, ast.Expr
                    ) and isinstance(following.value, ast.Constant)
    undocumented = [key for key, ok in documented.items() if not ok]
    assert not undocumented
    args_type = typing.get_type_hints(cls.__init__)["args"]
    assert args_type.__name__ == f"{cls.__name__}Args"
    outputs = {k for k, v in cls.__annotations__.items() if typing.get_origin(v) is pulumi.Output}
    assert outputs and all((cls.__name__, o) in documented for o in outputs)


def _scenario(cls, tmp_path):
    if cls is ContainerRuntime:
        return lambda: ContainerRuntime(
            "app", {"runtime": {"image": "img:1", "namespace": "app"}, "create_namespace": True}
        )
    if cls is AlibabaOssTarget:
        return lambda: AlibabaOssTarget("t", {"region": "cn-hangzhou", "bucket_name": "acme-x"})
    return lambda: TencentCosSource(
        "src",
        {
            "region": "ap-guangzhou",
            "bucket_name": "uploads",
            "relay": {"sink_url": "http://broker/"},
        },
        package_dir=str(tmp_path),
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_child_is_parented_to_a_component(pulumi_mocks, tmp_path, cls):
    pulumi_mocks.run(_scenario(cls, tmp_path))
    top = pulumi_mocks.one(f"cloudevents-connectors:index:{cls.__name__}")
    by_urn = {r.urn: r for r in pulumi_mocks.resources}
    descendants = pulumi_mocks.descendants_of(top.urn)
    # Nothing escapes the component: every other resource hangs below it.
    assert {r.urn for r in descendants} == set(by_urn) - {top.urn}
    for child in descendants:
        parent = by_urn[child.parent]
        assert parent.custom is False, f"{child.urn} is parented to a custom resource"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_register_outputs_comes_last_with_every_declared_output(cls):
    """Read from the source: Pulumi's mocks API is not told what register_outputs sends."""
    tree = ast.parse(Path(typing.cast(str, sys.modules[cls.__module__].__file__)).read_text())
    [klass] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__]
    [init] = [n for n in klass.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"]
    last = init.body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call), ast.dump(last)
    call = last.value
    assert isinstance(call.func, ast.Attribute) and call.func.attr == "register_outputs"
    [registered] = call.args
    assert isinstance(registered, ast.Dict)
    keys = {k.value for k in registered.keys if isinstance(k, ast.Constant)}
    declared = {k for k, v in cls.__annotations__.items() if typing.get_origin(v) is pulumi.Output}
    assert keys == declared
    # Each value is the attribute of the same name, so the state matches the class's outputs.
    for key, value in zip(registered.keys, registered.values, strict=True):
        assert isinstance(value, ast.Attribute) and value.attr == key.value, ast.dump(value)


def test_pulumi_component_provider_infers_a_schema_from_the_classes():
    """The same classes can later serve TypeScript/Go/YAML users through Pulumi's component host."""
    from pulumi.provider.experimental.component import ComponentProvider

    schema = json.loads(ComponentProvider(CLASSES, "cloudevents-connectors").schema)
    resources = schema["resources"]
    assert set(resources) == {f"cloudevents-connectors:index:{c.__name__}" for c in CLASSES}
    oss = resources["cloudevents-connectors:index:AlibabaOssTarget"]
    assert oss["isComponent"] is True
    assert set(oss["requiredInputs"]) == {"region", "bucketName"}
    assert set(oss["properties"]) == {"bucketName", "endpoint", "url", "secretName", "roleArn"}
    assert oss["inputProperties"]["bucketName"]["description"].startswith("Name of the bucket")
    cos = resources["cloudevents-connectors:index:TencentCosSource"]
    assert {"relay", "gateway", "sinkUrl", "events"} <= set(cos["inputProperties"])
    assert "cloudevents-connectors:index:RuntimeOptions" in schema["types"]
