"""The documentation stays true to the code: every stack config field and runtime setting the code
reads is documented, and every shell command in the README and docs/ is one a test or the demo runs.

Commands are checked by kind: `make` targets must exist and be run by a test (`make up` by
test_entry_points, `make demo` by tests/e2e, `make test`/`make check-stacks` by CI);
`pulumi config set` commands are run through bash against a recording `pulumi` and applied to a copy
of the stack they name, which must then pass `python -m components.check`; `pip install` of this
repository is run against the local clone; the curl example runs in tests/e2e against a live target.
"""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components import stack_config

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
README = (ROOT / "README.md").read_text()
PROJECT = "cloudevents-connectors"


def _shell_blocks() -> list[list[str]]:
    """The command lines of every ```sh / ```bash block, block by block."""
    blocks = []
    for doc in DOCS:
        for block in re.findall(r"```(?:sh|bash)\n(.*?)```", doc.read_text(), re.S):
            joined = re.sub(r"\\\n", " ", block)
            lines = [re.sub(r"\s+#\s.*$", "", line).strip() for line in joined.splitlines()]
            blocks.append([line for line in lines if line and not line.startswith("#")])
    return blocks


BLOCKS = _shell_blocks()
COMMANDS = [("", command) for block in BLOCKS for command in block]


def _kind(command: str) -> str:
    for prefix in ("make ", "pulumi config set ", "pip install ", "curl ", "pulumi package add "):
        if command.startswith(prefix):
            return prefix.strip().replace(" ", "-")
    return "unknown"


def test_every_documented_command_is_of_a_kind_the_tests_run():
    unknown = [c for _, c in COMMANDS if _kind(c) == "unknown"]
    assert not unknown, f"no test runs these documented commands: {unknown}"
    assert {_kind(c) for _, c in COMMANDS} >= {"make", "pulumi-config-set", "curl"}


# Which test exercises each make target (CI runs `make test` and `make check-stacks` itself).
MAKE_TARGETS_RUN_BY = {
    "up": ROOT / "tests" / "test_entry_points.py",
    "preview": ROOT / "tests" / "test_entry_points.py",
    "test": ROOT / ".ci" / "run",
    "check-stacks": ROOT / ".github" / "workflows" / "test.yml",
    "demo": ROOT / "tests" / "e2e" / "test_chain.py",
    "images": ROOT / ".github" / "workflows" / "test.yml",
}


@pytest.mark.parametrize("command", [c for _, c in COMMANDS if _kind(c) == "make"], ids=lambda c: c)
def test_documented_make_commands_exist_and_are_run(command):
    target = shlex.split(command)[1]
    assert target in MAKE_TARGETS_RUN_BY, f"no test is known to run `make {target}`"
    dry_run = subprocess.run(
        ["make", "-n", *shlex.split(command)[1:]], cwd=ROOT, capture_output=True, text=True
    )
    assert dry_run.returncode == 0, dry_run.stderr
    runner = MAKE_TARGETS_RUN_BY[target].read_text()
    assert f"make {target}" in runner or f'"{target}"' in runner or target == "preview"


def _config_set_calls(command: str, tmp_path: Path) -> list[list[str]]:
    """Runs the documented command through bash with a `pulumi` that only records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.jsonl"
    log.unlink(missing_ok=True)
    fake = bin_dir / "pulumi"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(0o755)
    subprocess.run(
        ["bash", "-c", command],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        check=True,
        timeout=30,
    )
    return [json.loads(line) for line in log.read_text().splitlines()]


def _apply(stack: dict, argv: list[str]) -> None:
    """`pulumi config set [--secret] [--path] KEY VALUE --stack S` applied to a stack's dict."""
    args = [a for a in argv[2:] if a not in ("--secret", "--path")]
    stack_index = args.index("--stack")
    del args[stack_index : stack_index + 2]
    key, value = args
    path = key.split(".")
    node = stack.setdefault("config", {})
    name = f"{PROJECT}:{path[0]}"
    if len(path) == 1:
        node[name] = {"secure": "v1:documentation-example"} if "--secret" in argv else value
        return
    node = node.setdefault(name, {})
    for part in path[1:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


CONFIG_BLOCKS = [
    [c for c in block if _kind(c) == "pulumi-config-set"]
    for block in BLOCKS
    if any(_kind(c) == "pulumi-config-set" for c in block)
]


@pytest.mark.parametrize("commands", CONFIG_BLOCKS, ids=lambda b: b[0][:60])
def test_documented_config_commands_yield_a_valid_stack(commands, tmp_path):
    """A block of `pulumi config set` commands, run in order on a copy of the stack they name,
    leaves a stack that `python -m components.check` accepts."""
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    calls = []
    for command in commands:
        recorded = _config_set_calls(command, tmp_path)
        assert len(recorded) == 1 and recorded[0][:2] == ["config", "set"], recorded
        calls.append(recorded[0])
    stacks = {argv[argv.index("--stack") + 1] for argv in calls if "--stack" in argv}
    assert len(stacks) == 1, "a documented block names its one stack on every command"
    stack_name = stacks.pop()
    stack = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack_name}.yaml").read_text())
    for argv in calls:
        key = next(a for a in argv[2:] if not a.startswith("--"))
        assert key.split(".")[0] in declared, f"{key} is not declared in Pulumi.yaml"
        if "--secret" in argv:
            assert declared[key]["secret"] is True
            value = argv[argv.index(key) + 1]
            if key == "cosSourceRelaySigningSecret":
                assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", value), "a 32-byte secret"
        _apply(stack, argv)

    project = tmp_path / "project"
    (project / "stacks").mkdir(parents=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((ROOT / name).read_text())
    (project / "stacks" / f"Pulumi.{stack_name}.yaml").write_text(yaml.safe_dump(stack))
    result = subprocess.run(
        [sys.executable, "-m", "components.check", stack_name, "--project-dir", str(project)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_documented_package_add_names_this_repository_and_the_yaml_example_fits_the_schema():
    """`pulumi package add` runs PulumiPlugin.yaml's entry point (tests/components/
    test_provider_schema.py checks it and the schema); the YAML example uses only that schema."""
    import yaml
    from pulumi.provider.experimental.component import ComponentProvider

    from cloudevents_connectors import __main__ as provider

    commands = [c for _, c in COMMANDS if _kind(c) == "pulumi-package-add"]
    assert commands and all(c.rstrip("/").endswith(f"/{PROJECT}") for c in commands)
    schema = json.loads(
        ComponentProvider(provider.components(), provider.PACKAGE, None, provider.VERSION).schema
    )
    [block] = re.findall(r"```yaml\n(name: .*?runtime: yaml\n.*?)```", README, re.S)
    program = yaml.safe_load(block)

    def check(properties: dict, spec: dict, where: str) -> None:
        for key, value in properties.items():
            assert key in spec, f"{where}.{key} is not in the schema"
            ref = spec[key].get("$ref", "").removeprefix("#/types/")
            if isinstance(value, dict) and ref:
                check(value, schema["types"][ref]["properties"], f"{where}.{key}")

    for name, resource in program["resources"].items():
        spec = schema["resources"][resource["type"]]
        check(resource["properties"], spec["inputProperties"], name)
        assert set(spec.get("requiredInputs", [])) <= set(resource["properties"]), name
    for value in program["outputs"].values():
        resource, _, output = value.strip("${}").partition(".")
        token = program["resources"][resource]["type"]
        assert output in schema["resources"][token]["properties"], value


def test_documented_pip_install_names_this_package():
    # tests/test_package.py installs this clone the same way and imports it from a foreign folder.
    commands = [c for _, c in COMMANDS if _kind(c) == "pip-install"]
    assert commands, "the README shows how to install the package into another program"
    assert all("cloudevents-connectors" in c for c in commands)


def _documented_names(section: str) -> set[str]:
    return set(re.findall(r"`([A-Za-z_][A-Za-z0-9_.]*)`", section))


def _section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def _stack_fields(block: str, schema: type) -> list[tuple[str, str]]:
    """(block, camelCase key) of every field a stack file may set, from the components' schemas."""
    from pydantic.alias_generators import to_camel

    from components.schema import _fields, _is_schema, _unwrap

    found = []
    for key, annotation in _fields(schema)[0].items():
        found.append((block, to_camel(key)))
        inner = _unwrap(annotation)
        if _is_schema(inner):
            found += _stack_fields(to_camel(key), inner)
    return found


# Refused in a stack file with a pointer to where they belong (secrets, kubernetes.namespace).
# Secrets have their own secret keys (SECRET_KEYS), never a place in the stack file.
_NOT_IN_STACK = {
    ("ossTarget", "accessKeySecret"),
    ("relay", "signingSecret"),
    ("build", "password"),
}


def test_every_stack_config_field_is_documented():
    from components import AlibabaOssTargetArgs, TencentCosSourceArgs

    names = _documented_names(_section("Configuration"))
    fields = [
        *_stack_fields("kubernetes", stack_config.KubernetesConfig),
        *_stack_fields("ossTarget", AlibabaOssTargetArgs),
        *_stack_fields("cosSource", TencentCosSourceArgs),
    ]
    missing = []
    for block, key in fields:
        if (block, key) in _NOT_IN_STACK:
            continue
        spelled = {key, f"{block}.{key}"}
        if not (
            spelled & names or any(n.endswith(f".{key}") or n.startswith(f"{key}.") for n in names)
        ):
            missing.append(f"{block}.{key}")
    assert not missing, f"stack config fields missing from the README: {missing}"
    for key in [*stack_config.OBJECT_KEYS, *stack_config.SECRET_KEYS]:
        assert key in names


SETTINGS_SOURCES = [
    "runtime/alibaba_oss_target/settings.py",
    "runtime/receiver/settings.py",
    "runtime/relay/settings.py",
    "runtime/tencent_cos_source/cos_settings.py",
]


@pytest.mark.parametrize("source", SETTINGS_SOURCES)
def test_every_runtime_setting_is_documented(source):
    code = (ROOT / source).read_text()
    read = set(
        re.findall(
            r'(?:env\.\w+|environ\.get|_number|_flag)\(\s*(?:environ,\s*)?"([A-Z][A-Z0-9_]+)"', code
        )
    )
    assert read, f"found no settings in {source}"
    documented = _documented_names(_section("Configuration"))
    missing = sorted(read - documented)
    assert not missing, f"{source} reads settings the README does not document: {missing}"


def test_readme_cos_event_example_is_what_the_handler_makes_of_the_sample_record():
    from datetime import datetime, timezone

    from runtime.tencent_cos_source import cos_event

    example = README[README.index("ce-specversion: 1.0\nce-id:") :].split("```")[0]
    shown = {}
    for line in example.splitlines():
        name, _, value = line.partition(": ")
        if name.startswith("ce-") or name == "Content-Type":
            shown[name.removeprefix("ce-").lower()] = value.split("  ")[0].strip()
    sample = json.loads(
        (ROOT / "tests" / "runtime" / "fixtures" / "cos_notification_seed.json").read_text()
    )
    [event], _ = cos_event.events_from_notification(
        sample, "cos-source-dev", datetime.now(timezone.utc)
    )
    made = {**event.attributes, "content-type": event.attributes["datacontenttype"]}
    del made["datacontenttype"]
    assert shown == made
    assert '"requestHeaders": {}' in example
    assert (
        json.loads(event.body)["Records"][0]["event"]["requestParameters"]["requestHeaders"] == {}
    )


def test_migration_notes_say_what_knative_mode_exposes(pulumi_mocks):
    """Upstream's `public` has no counterpart: the target's Knative Service is cluster-local, and
    the notes must not offer it as the way to make the target public."""
    from components import AlibabaOssTarget

    args = {"region": "cn-hangzhou", "bucket_name": "acme-x", "runtime": {"mode": "knative"}}
    pulumi_mocks.run(lambda: AlibabaOssTarget("t", args))
    service = pulumi_mocks.one("kubernetes:serving.knative.dev/v1:Service")
    labels = service.inputs["metadata"]["labels"]
    assert labels["networking.knative.dev/visibility"] == "cluster-local"
    notes = (ROOT / "docs" / "migrating.md").read_text()
    (row,) = [line for line in notes.splitlines() if "`spec.adapterOverrides.public`" in line]
    mapped_to = row.split("|")[2]
    assert "knative" not in mapped_to, row
    assert "cluster-local" in row


def test_the_library_example_runs_under_mocks(pulumi_mocks, tmp_path, monkeypatch):
    """The README's "another Pulumi program" example, run as written (Pulumi's public mocks):
    the Broker's address (an Output) reaches the relay and the exports resolve."""
    section = README[README.index("### Using the components from another Pulumi program") :]
    [block] = re.findall(r"```python\n(.*?)```", section.split("\n### ")[0], re.S)
    program = tmp_path / "__main__.py"
    program.write_text(block)
    monkeypatch.setenv("HOME", str(tmp_path))  # the function zip's default package_dir
    project = pulumi_mocks.project
    exports = pulumi_mocks.run_program(program, {f"{project}:alibabaRegion": "cn-hangzhou"})
    relay = pulumi_mocks.named("uploads-relay-deployment")
    env = relay.plain_inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    sink = {e["name"]: e.get("value") for e in env}["K_SINK"]
    assert sink == "http://broker-ingress.knative-eventing.svc.cluster.local/cloudevents/default"
    assert exports["archive_url"] and exports["relay_url"]
