"""The GitHub workflows are valid against the schema check-jsonschema ships (offline) and do
what the README promises: the test workflow runs the README's test command, the preview workflow
previews every stack and skips with a notice on forks."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _check_jsonschema() -> str:
    found = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert found, "check-jsonschema is installed by requirements-dev.txt"
    return found


def test_both_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"test.yml", "preview.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_github_schema_offline(workflow):
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_a_broken_workflow(tmp_path):
    # Proves the validation above can fail: a job without runs-on is not a valid workflow.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: echo\n")
    result = subprocess.run(
        [_check_jsonschema(), "--builtin-schema", "vendor.github-workflows", str(broken)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0


def _load(name: str) -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def test_test_workflow_runs_the_readme_test_command():
    workflow = _load("test.yml")
    triggers = workflow[True]  # YAML 1.1 reads the bare key `on` as a boolean
    assert {"push", "pull_request"} <= set(triggers)
    commands = [step.get("run", "") for step in workflow["jobs"]["test"]["steps"]]
    assert "make test" in commands
    assert "make check-stacks" in commands
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    ci_run = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci_run and "\nmake test\n" in ci_run


def test_preview_workflow_previews_every_stack_and_skips_forks():
    workflow = _load("preview.yml")
    assert set(workflow[True]) == {"pull_request"}
    preview = workflow["jobs"]["preview"]
    stacks = sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in (ROOT / "stacks").glob("Pulumi.*.yaml")
    )
    assert sorted(preview["strategy"]["matrix"]["stack"]) == stacks
    action = next(
        s for s in preview["steps"] if str(s.get("uses", "")).startswith("pulumi/actions")
    )
    assert action["with"]["command"] == "preview"
    assert action["with"]["comment-on-pr"] is True
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in preview["env"]["PULUMI_CONFIG_PASSPHRASE"]
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["if"] == same_repo
    fork = workflow["jobs"]["fork-check"]
    assert fork["if"] == same_repo.replace("==", "!=")
    assert any("fork" in step.get("run", "") for step in fork["steps"])
