"""The GitHub workflows are valid against the schema check-jsonschema ships, pass actionlint and
zizmor (all offline), and do what the README promises: the test workflow runs the README's test
command, the preview workflow previews every stack from a fresh state backend and skips with a
notice on forks, the release workflow publishes both images for the package version."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is installed by requirements-dev.txt"
    return found


def _check_jsonschema() -> str:
    return _tool("check-jsonschema")


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"test.yml", "preview.yml", "release.yml"}


def _actionlint(*paths: Path) -> subprocess.CompletedProcess:
    # -shellcheck= and -pyflakes= off: the run: scripts are checked the same on every machine.
    return subprocess.run(
        [_tool("actionlint"), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )


def _zizmor(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", "--format", "plain", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=ROOT,
    )


def test_workflows_pass_actionlint():
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_zizmor():
    result = _zizmor(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


UNSAFE = """on: pull_request
jobs:
  x:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def test_both_linters_do_find_problems(tmp_path):
    # Guards the two tests above: an unpinned action, persisted credentials and a template injected
    # into a script are findings, and a job without runs-on is an actionlint error.
    unsafe = tmp_path / ".github" / "workflows" / "unsafe.yml"
    unsafe.parent.mkdir(parents=True)
    unsafe.write_text(UNSAFE)
    found = _zizmor(unsafe)
    assert found.returncode != 0
    for audit in ("unpinned-uses", "artipacked", "template-injection"):
        assert audit in found.stdout + found.stderr, audit
    unsafe.write_text("on: push\njobs:\n  x:\n    steps:\n      - run: echo\n")
    assert _actionlint(unsafe).returncode != 0


def _steps() -> list[tuple[str, dict]]:
    return [
        (path.name, step)
        for path in WORKFLOWS
        for job in yaml.safe_load(path.read_text())["jobs"].values()
        for step in job.get("steps", [])
    ]


def test_every_action_is_pinned_to_a_commit_with_its_release_named():
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if "uses:" in line:
                assert re.search(r"uses: [\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), line


def test_checkouts_do_not_persist_credentials():
    checkouts = [
        (n, s) for n, s in _steps() if str(s.get("uses", "")).startswith("actions/checkout")
    ]
    assert len(checkouts) >= 5
    for name, step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, name


def test_only_jobs_that_need_more_than_read_get_it():
    for path in WORKFLOWS:
        workflow = yaml.safe_load(path.read_text())
        assert workflow["permissions"] in ({"contents": "read"}, {}), path.name
        for job_name, job in workflow["jobs"].items():
            extra = {k: v for k, v in job.get("permissions", {}).items() if v != "read"}
            allowed = {
                ("preview.yml", "preview"): {"pull-requests": "write"},
                ("release.yml", "images"): {"packages": "write"},
            }.get((path.name, job_name), {})
            assert extra == allowed, (path.name, job_name)


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
    # A fresh backend has no stack yet: pulumi/actions creates it (upsert), with the secrets
    # provider `make up` uses (scripts/pulumi-stack.sh: --secrets-provider passphrase).
    assert action["with"]["upsert"] is True
    assert action["with"]["secrets-provider"] == "passphrase"
    assert "--secrets-provider passphrase" in (ROOT / "scripts" / "pulumi-stack.sh").read_text()
    # It installs what `make preview` installs, by running the same make target.
    runs = [step.get("run", "") for step in preview["steps"]]
    assert "make deps" in runs
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(
        r"^up preview:\n(\t.*\n)*\t@\$\(MAKE\) --no-print-directory deps$", makefile, re.M
    )
    assert "secrets.PULUMI_CONFIG_PASSPHRASE" in preview["env"]["PULUMI_CONFIG_PASSPHRASE"]
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert preview["if"] == same_repo
    fork = workflow["jobs"]["fork-check"]
    assert fork["if"] == same_repo.replace("==", "!=")
    assert any("fork" in step.get("run", "") for step in fork["steps"])


def test_release_publishes_both_images_for_both_platforms_with_sbom_and_provenance():
    workflow = _load("release.yml")
    assert workflow[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    job = workflow["jobs"]["images"]
    assert {(i["image"], i["dockerfile"]) for i in job["strategy"]["matrix"]["include"]} == {
        ("alibaba-oss-target", "runtime/alibaba_oss_target/Dockerfile"),
        ("relay", "runtime/relay/Dockerfile"),
    }
    build = next(s for s in job["steps"] if "docker/build-push-action" in s.get("uses", ""))
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert build["with"]["sbom"] is True
    assert build["with"]["provenance"] == "mode=max"
    meta = next(s for s in job["steps"] if "docker/metadata-action" in s.get("uses", ""))
    assert meta["with"]["images"] == "ghcr.io/${{ github.repository_owner }}/${{ matrix.image }}"
    assert "type=semver,pattern={{version}}" in meta["with"]["tags"]


def test_default_images_are_what_the_release_of_this_version_publishes():
    # The release of tag v<version> in the cloudevents-connectors organisation publishes
    # ghcr.io/cloudevents-connectors/<image>:<version>: the components' defaults must name it.
    from components import cos_source_spec, oss_target_spec

    pyproject = (ROOT / "pyproject.toml").read_text()
    version = re.search(r'^version = "(.+)"$', pyproject, re.M).group(1)
    published = "ghcr.io/cloudevents-connectors/{}:" + version
    defaults = [oss_target_spec.DEFAULT_IMAGE, cos_source_spec.DEFAULT_RELAY_IMAGE]
    assert defaults == [published.format("alibaba-oss-target"), published.format("relay")]
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "version = " in release and "${TAG#v}" in release
