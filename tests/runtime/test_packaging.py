"""The SCF function package: contents, determinism, and the handler run from it."""

import base64
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest
from standardwebhooks import Webhook

from components.packaging import SOURCE_DIR, build_function_package
from tests.fakes.sink import CloudEventsSink, localhost_tls

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
REPO = pathlib.Path(__file__).resolve().parents[2]
MODULES = ["cos_delivery.py", "cos_event.py", "cos_settings.py", "index.py"]

# Runs inside a fresh `python -I`: only the unpacked folder is added to the path, as SCF does.
RUNNER = """
import json, sys, sysconfig
package_dir = sys.argv[1]
sys.path.insert(0, package_dir)
import index
result = index.main_handler(json.load(sys.stdin), {"time_limit_in_ms": 10000, "request_id": "r"})
stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
foreign = sorted(
    name for name, module in list(sys.modules.items())
    if name != "__main__" and getattr(module, "__file__", None)
    and not module.__file__.startswith(package_dir)
    and not any(module.__file__.startswith(p) for p in stdlib)
)
report = {"result": result, "foreign": foreign, "index": index.__file__}
print("RESULT " + json.dumps(report))
"""


def python_310() -> str | None:
    """A Python 3.10 interpreter (SCF's runtime), if this machine has one."""
    candidates = [os.environ.get("PYTHON310"), shutil.which("python3.10")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10")))
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run(
                [candidate, "--version"], capture_output=True, text=True, timeout=10
            )
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.startswith("Python 3.10"):
            return candidate
    return None


def test_zip_holds_only_the_handler_modules_at_its_root(tmp_path):
    path = build_function_package(tmp_path)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        assert [info.filename for info in infos] == MODULES
        for info in infos:
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.external_attr >> 16 == 0o100644
            assert archive.read(info) == (SOURCE_DIR / info.filename).read_bytes()


def test_same_sources_same_bytes_and_name(tmp_path):
    first = build_function_package(tmp_path / "a")
    second = build_function_package(tmp_path / "b")
    again = build_function_package(tmp_path / "a")
    assert first.name == second.name == again.name
    assert first.read_bytes() == second.read_bytes()
    assert first.is_absolute()
    assert (
        first.name.startswith("tencent-cos-source-")
        and len(first.stem) == len("tencent-cos-source-") + 16
    )


def test_changed_source_changes_the_name(tmp_path):
    sources = tmp_path / "src"
    shutil.copytree(SOURCE_DIR, sources, ignore=shutil.ignore_patterns("__pycache__"))
    original = build_function_package(tmp_path / "out", sources)
    index = sources / "index.py"
    index.write_text(index.read_text() + "\n# changed\n")
    changed = build_function_package(tmp_path / "out", sources)
    assert changed.name != original.name
    (sources / "notes.txt").write_text("not a module")
    assert build_function_package(tmp_path / "out", sources).name == changed.name


def test_crlf_checkout_gives_the_same_package(tmp_path):
    sources = tmp_path / "src"
    shutil.copytree(SOURCE_DIR, sources, ignore=shutil.ignore_patterns("__pycache__"))
    for module in sources.glob("*.py"):
        module.write_bytes(module.read_bytes().replace(b"\n", b"\r\n"))
    assert build_function_package(tmp_path / "a", sources).name == (
        build_function_package(tmp_path / "b").name
    )


def test_packaging_module_does_not_import_pulumi():
    """Loaded on its own (not through the `components` package, whose exports are the Pulumi
    components), the builder pulls in nothing from Pulumi."""
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.spec_from_file_location('alone', sys.argv[1])\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('pulumi')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO / "components" / "packaging.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "[]"


def test_cli_prints_the_absolute_path_last(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "components.packaging", str(tmp_path / "out")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    last = pathlib.Path(out.stdout.strip().splitlines()[-1])
    assert last.is_absolute() and last.is_file()
    assert last == build_function_package(tmp_path / "out")


def test_cli_usage_error(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "components.packaging"], cwd=REPO, capture_output=True, text=True
    )
    assert out.returncode == 2 and "usage" in out.stderr


@pytest.mark.parametrize(("scheme", "signed"), [("http", False), ("https", False), ("http", True)])
@pytest.mark.parametrize("interpreter", ["current", "3.10"])
def test_unpacked_zip_runs_in_a_fresh_isolated_interpreter(tmp_path, interpreter, scheme, signed):
    executable = sys.executable if interpreter == "current" else python_310()
    if executable is None:
        pytest.skip("no Python 3.10 interpreter on this machine (set PYTHON310 to run this)")
    unpacked = tmp_path / "function"
    unpacked.mkdir()
    with zipfile.ZipFile(build_function_package(tmp_path / "dist")) as archive:
        archive.extractall(unpacked)
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    notification = (FIXTURES / "cos_notification_seed.json").read_text()
    env = {"PATH": os.environ.get("PATH", ""), "SCF_FUNCTIONNAME": "cos-source-fn"}
    if signed:  # the relay's mode: structured, Standard Webhooks headers
        env["SINK_SIGNING_SECRET"] = "whsec_" + base64.b64encode(b"k" * 32).decode()
    tls = None
    if scheme == "https":
        tls = localhost_tls(tmp_path / "ca.pem")
        env["SSL_CERT_FILE"] = str(tmp_path / "ca.pem")
    with CloudEventsSink(tls=tls) as sink:
        env["K_SINK"] = sink.url
        out = subprocess.run(
            [executable, "-I", str(runner), str(unpacked)],
            input=notification,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        [event] = sink.wait_for(1)
    report = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert report["index"] == str(unpacked / "index.py")
    assert report["foreign"] == [], "the handler imported something outside the stdlib and zip"
    assert report["result"]["ids"] == [event.id]
    assert event.attributes["source"] == "cos-source-fn"
    assert event.attributes["time"] == "2018-12-19T07:49:30Z"
    assert event.mode == ("structured" if signed else "binary")
    if signed:
        Webhook(env["SINK_SIGNING_SECRET"]).verify(
            sink.requests[0].body, sink.requests[0].headers, json_parse=False
        )
