"""Pulumi.yaml against Pulumi's own project schema (vendored, offline) and the program's keys."""

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from components.check.stack_file import StackFileError, load_project, read_stack
from components.stack_config import OBJECT_KEYS, SECRET_KEYS
from tests.pulumi_mocks import REPO_ROOT

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "pulumi-project.schema.json").read_text())
PROJECT = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())


def test_pulumi_yaml_matches_the_pulumi_project_schema():
    jsonschema.Draft202012Validator(SCHEMA).validate(PROJECT)


def test_schema_check_is_not_vacuous():
    broken = {**PROJECT, "config": {"ossTarget": {"type": "object", "description": "x"}}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_project_keeps_name_runtime_and_stack_dir():
    assert PROJECT["name"] == "cloudevents-connectors"
    assert PROJECT["runtime"]["name"] == "python"
    assert PROJECT["stackConfigDir"] == "stacks"


def test_every_key_the_program_reads_is_declared_and_described():
    config = PROJECT["config"]
    assert set(config) == set(OBJECT_KEYS) | set(SECRET_KEYS)
    for key, declaration in config.items():
        assert declaration["description"].strip(), key
        # Declared keys without a default are required by the CLI; every block is optional.
        assert "default" in declaration, key
    for key in OBJECT_KEYS:
        assert config[key]["default"] == {}
    for key in SECRET_KEYS:
        assert config[key]["type"] == "string" and config[key]["secret"] is True


def _project_with(tmp_path: Path, stack_yaml: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((REPO_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "Pulumi.t.yaml").write_text(stack_yaml)
    return tmp_path


@pytest.mark.parametrize(
    ("stack_yaml", "message"),
    [
        ("config:\n  cloudevents-connectors:oops: 1\n", "oops is not declared"),
        (
            "config:\n  cloudevents-connectors:ossTargetAccessKeySecret: plain\n",
            "must be encrypted",
        ),
        (
            "config:\n  cloudevents-connectors:cosSourceRelaySigningSecret:\n    secure: v1:x\n",
            None,
        ),
        ("config: [1]\n", "must be a mapping"),
        ("config: {a: [\n", "not valid YAML"),
    ],
)
def test_stack_file_rules(tmp_path, stack_yaml, message):
    project = load_project(_project_with(tmp_path, stack_yaml))
    if message is None:
        values = read_stack(project, "t")
        # A well-formed stand-in: the component checks the resolved secret's form.
        assert values.secrets == {"cosSourceRelaySigningSecret": "whsec_" + "A" * 43 + "="}
        assert values.values["ossTarget"] == {}  # the declared default applies
    else:
        with pytest.raises(StackFileError, match=message):
            read_stack(project, "t")


def test_typed_keys_are_type_checked(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text(
        "name: p\nruntime: python\nconfig:\n  replicas:\n    type: integer\n    description: n\n"
    )
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  p:replicas: many\n")
    with pytest.raises(StackFileError, match="must be of type integer"):
        read_stack(load_project(tmp_path), "t")
    (tmp_path / "Pulumi.t.yaml").write_text("config:\n  aws:region: x\n")
    with pytest.raises(StackFileError, match="p:replicas is required"):
        read_stack(load_project(tmp_path), "t")
