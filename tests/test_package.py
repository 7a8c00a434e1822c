"""The installed package: `pip install` of this clone gives `import cloudevents_connectors` and
nothing top-level that a program's own `components/` or `runtime/` folder could clash with."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in the foreign folder, with the installed copy on PYTHONPATH: the folder's own packages come
# first on sys.path ('' is the current directory), exactly the shadowing a Pulumi project meets.
PROGRAM = textwrap.dedent(
    """
    import json, pathlib, sys
    import components, runtime
    assert components.OWN and runtime.OWN  # the project's own folders, untouched

    import pulumi
    import cloudevents_connectors as cc
    from cloudevents_connectors import AlibabaOssTarget, TencentCosSource
    from cloudevents_connectors.components.packaging import build_function_package
    from cloudevents_connectors.runtime.alibaba_oss_target.app import build_target
    from cloudevents_connectors.runtime.relay.app import build_relay

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            return [f"{args.name}-id", args.inputs]

        def call(self, args):
            if args.token == "tencentcloud:User/getInfo:getInfo":
                return {"appId": "1300000001", "ownerUin": "1", "uin": "1"}
            return {}

    pulumi.runtime.set_mocks(Mocks(), preview=False)
    seen = {}

    @pulumi.runtime.test
    def program():
        target = AlibabaOssTarget("t", {"region": "cn-hangzhou", "bucket_name": "acme-x"})
        source = TencentCosSource(
            "src",
            {"region": "ap-guangzhou", "bucket_name": "up", "sink_url": "https://sink.example/"},
            package_dir=sys.argv[1],
        )
        return pulumi.Output.all(target.url, source.bucket_name, source.code_path).apply(
            lambda values: seen.update(url=values[0], bucket=values[1], code_path=values[2])
        )

    program()

    # The recorder for a program's own unit tests, from the installed package.
    from cloudevents_connectors.testing import MockEngine

    engine = MockEngine("installed", stack="test").install()
    engine.run(lambda: AlibabaOssTarget("t2", {"region": "cn-hangzhou", "bucket_name": "acme-y"}))
    seen["recorded"] = engine.one("alicloud:oss/bucket:Bucket").inputs["bucket"]
    print(json.dumps({
        "package": str(pathlib.Path(cc.__file__).parent),
        "components": str(pathlib.Path(cc.components.__file__).parent),
        "zip": pathlib.Path(build_function_package(sys.argv[1])).name,
        **seen,
    }))
    """
)


def test_installed_package_works_beside_a_projects_own_components_and_runtime(tmp_path):
    site = tmp_path / "site"
    # From a copy without what builds leave behind: setuptools reuses a stale `build/` folder, which
    # would install an older layout than the tree under test.
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            "build", "dist", "*.egg-info", ".venv", ".git", "__pycache__", "node_modules",
            ".pulumi-state", ".pytest_cache", ".ruff_cache",
        ),
    )  # fmt: skip
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    top_level = sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info"))
    assert top_level == ["cloudevents_connectors"], top_level
    package = site / "cloudevents_connectors"
    for path in (
        "components/__init__.py",
        "components/schema.py",
        "runtime/receiver/__init__.py",
        "runtime/alibaba_oss_target/Dockerfile",
        "runtime/tencent_cos_source/index.py",
        "runtime/relay/requirements.txt",
    ):
        assert (package / path).is_file(), path
    assert not (site / "tests").exists(), "the test fakes are not part of the package"

    project = tmp_path / "project"
    for own in ("components", "runtime"):
        (project / own).mkdir(parents=True)
        (project / own / "__init__.py").write_text("OWN = True\n")
    zips = tmp_path / "zips"
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(zips)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(shown["package"]) == package
    assert Path(shown["components"]) == package / "components"
    assert shown["url"] == "http://t.default.svc.cluster.local"
    assert shown["bucket"] == "up-1300000001"
    assert shown["recorded"] == "acme-y"
    # The SCF zip of the installed copy is the repository's, byte for byte (same content hash).
    from components.packaging import build_function_package

    assert shown["zip"] == build_function_package(tmp_path / "repo-zip").name
    assert shown["code_path"] == f"{zips}/{shown['zip']}"


def test_package_code_imports_itself_relatively():
    """An absolute `runtime.`/`components.` import works in the repository but not once installed
    under cloudevents_connectors: every import inside the package is relative (the images keep
    `python -m runtime.<name>`, which relative imports serve as well)."""
    import ast

    # The deliberate exceptions: repository fallbacks beside the installed relative imports.
    allowed = {
        ("components/oss_target_spec.py", "runtime.alibaba_oss_target.bucket_name"),
        ("components/oss_target_spec.py", "runtime.alibaba_oss_target.templates"),
        ("components/oss_target_spec.py", "runtime.alibaba_oss_target.settings"),
        ("components/oss_target_spec.py", "runtime.receiver.settings"),
        ("components/container_spec.py", "runtime.receiver.settings"),
        ("components/container_spec.py", "runtime.relay.settings"),
        ("components/cos_source_spec.py", "runtime.relay.settings"),
    }
    found = []
    for folder in ("components", "runtime"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for node in ast.walk(ast.parse(path.read_text())):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                for module in modules:
                    top = module.split(".")[0]
                    if top in ("components", "runtime") and (relative, module) not in allowed:
                        found.append(f"{relative}: {module}")
    assert not found


def test_components_check_the_runtimes_rules_without_the_runtimes_dependencies():
    """The program's environment (requirements.txt) has no aiohttp: the memory rule the components
    import from runtime/receiver/settings.py must load without it."""
    code = (
        "import sys; import components; from components import container_spec; "
        "assert container_spec.RUNTIME_MAX_BODY_BYTES; "
        "heavy = {'aiohttp', 'prometheus_client', 'alibabacloud_oss_v2'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
