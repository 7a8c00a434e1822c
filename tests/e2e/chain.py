"""The local chain, shared by `scripts/demo.py`, the end-to-end tests and `bench/chain.py`.

    COS notification -> SCF handler (from the built zip, fresh `python -I`) -> relay (signed)
        -> OSS target -> object-store emulator

Every service runs in its own process on an ephemeral 127.0.0.1 port with a clean environment, its
output goes to a log file (so a chatty process can never block on a full pipe), and `Chain` stops
them all, in reverse order, whatever happens. Standard library only, so the demo needs nothing else.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED_NOTIFICATION = ROOT / "tests" / "runtime" / "fixtures" / "cos_notification_seed.json"
BUCKET = "demo-bucket"
ACCESS_KEY_ID, ACCESS_KEY_SECRET = "demo-ak", "demo-sk-" + "0123456789abcdef"
FUNCTION_NAME = "cos-source-demo"
START_TIMEOUT = 30.0
# Never through a proxy from the environment: everything here is on 127.0.0.1.
_open = urllib.request.build_opener(urllib.request.ProxyHandler({})).open


class ChainError(RuntimeError):
    """A service did not start or answered unexpectedly; the message says which and why."""


def base_env(**extra: str) -> dict[str, str]:
    """Nothing inherited but PATH: no proxies, no stray OSS_*/K_SINK from the developer's shell."""
    return {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", **extra}


class Service:
    """One child process; stdout and stderr go to `log_path`."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, generation: int = 0
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        suffix = f".{generation}" if generation else ""
        self.log_path = log_dir / f"{name}{suffix}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session: a Ctrl-C in the terminal reaches only the parent, which stops the
            # children in order instead of every process racing to exit at once.
            start_new_session=True,
        )
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def lines(self) -> list[str]:
        return self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()

    def tail(self, count: int = 15) -> str:
        return "\n".join(deque(self.lines(), maxlen=count))

    def wait_for_line(self, parse: Callable[[str], int | None], timeout: float) -> int:
        """Poll the log until `parse` returns a port; fail loudly if the process exits first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                found = parse(line)
                if found is not None:
                    return found
            if self.process.poll() is not None:
                raise ChainError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.tail()}"
                )
            time.sleep(0.02)
        raise ChainError(f"{self.name} did not start in {timeout:.0f} s:\n{self.tail()}")

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (the services drain), then SIGKILL if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()
        return self.process.returncode


def _listening_port(line: str) -> int | None:
    """The receiver's JSON log line `{"msg": "listening", "port": N}`."""
    if '"listening"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return int(record["port"]) if record.get("msg") == "listening" else None


def _endpoint_port(line: str) -> int | None:
    if line.startswith("endpoint="):
        return urllib.parse.urlsplit(line.removeprefix("endpoint=").strip()).port
    return None


def wait_ready(url: str, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with _open(url + "readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
                last = answer.status
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.05)
    raise ChainError(f"{url}readyz not ready after {timeout:.0f} s (last: {last})")


def start_emulator(log_dir: Path, *extra_args: str) -> Service:
    argv = [sys.executable, "-m", "tests.fakes.objectstore", "--port", "0", "--bucket", BUCKET]
    argv += ["--credentials", f"{ACCESS_KEY_ID}:{ACCESS_KEY_SECRET}", *extra_args]
    service = Service("emulator", argv, base_env(), log_dir)
    try:
        service.port = service.wait_for_line(_endpoint_port, START_TIMEOUT)
    except BaseException:  # Ctrl-C included: never leave it running
        service.stop(5)
        raise
    return service


def oss_target_env(emulator_endpoint: str, port: int = 0, **extra: str) -> dict[str, str]:
    defaults = {
        "OSS_ENDPOINT": emulator_endpoint,
        "OSS_BUCKET": BUCKET,
        "OSS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "OSS_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "DRAIN_TIMEOUT_SECONDS": "10",
    }
    return base_env(**{**defaults, **extra})


def start_python_service(
    name: str, module: str, env: dict[str, str], log_dir: Path, generation: int = 0
) -> Service:
    service = Service(name, [sys.executable, "-m", module], env, log_dir, generation)
    try:
        service.port = service.wait_for_line(_listening_port, START_TIMEOUT)
        wait_ready(service.url)
    except BaseException:
        service.stop(5)
        raise
    return service


def start_oss_target(log_dir: Path, emulator: Service, port: int = 0, **extra: str) -> Service:
    env = oss_target_env(f"http://127.0.0.1:{emulator.port}", port, **extra)
    return start_python_service("oss-target", "runtime.alibaba_oss_target", env, log_dir)


def start_relay(log_dir: Path, sink_url: str, signing_secret: str, **extra: str) -> Service:
    env = base_env(
        K_SINK=sink_url,
        RELAY_SIGNING_SECRET=signing_secret,
        PORT="0",
        HOST="127.0.0.1",
        DRAIN_TIMEOUT_SECONDS="10",
        **extra,
    )
    return start_python_service("relay", "runtime.relay", env, log_dir)


def new_signing_secret() -> str:
    """A Standard Webhooks secret, as the component generates it (32 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class Chain:
    """Emulator -> OSS target -> relay, started in that order and stopped in reverse.

    with Chain(on_progress=print) as chain:
        chain.emulator.url, chain.target.url, chain.relay.url, chain.signing_secret
    """

    def __init__(
        self,
        *,
        emulator_args: tuple[str, ...] = (),
        target_env: dict[str, str] | None = None,
        relay_env: dict[str, str] | None = None,
        on_progress: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.emulator_args = emulator_args
        self.target_env = target_env or {}
        self.relay_env = relay_env or {}
        self.progress = on_progress
        self.signing_secret = new_signing_secret()
        self.services: list[Service] = []
        self._temp = tempfile.TemporaryDirectory(prefix="cloudevents-chain-")
        self.work_dir = Path(self._temp.name)

    @property
    def emulator(self) -> Service:
        return self._named("emulator")

    @property
    def target(self) -> Service:
        return self._named("oss-target")

    @property
    def relay(self) -> Service:
        return self._named("relay")

    def _named(self, name: str) -> Service:
        return next(s for s in reversed(self.services) if s.name == name)

    def start(self) -> Chain:
        try:
            emulator = start_emulator(self.work_dir, *self.emulator_args)
            self.services.append(emulator)
            self.progress(f"object-store emulator  {emulator.url}  (bucket {BUCKET})")
            target = start_oss_target(self.work_dir, emulator, **self.target_env)
            self.services.append(target)
            self.progress(f"OSS target             {target.url}  (ready)")
            relay = start_relay(self.work_dir, target.url, self.signing_secret, **self.relay_env)
            self.services.append(relay)
            self.progress(f"relay                  {relay.url}  (K_SINK = the OSS target)")
        except BaseException:
            self.stop()
            raise
        return self

    def restart_target(self) -> Service:
        """SIGTERM the OSS target (it drains) and start a new one on the same port."""
        old = self.target
        old.stop()
        env = {**old.env, "PORT": str(old.port)}
        generation = sum(1 for s in self.services if s.name == old.name)
        new = start_python_service(
            old.name, "runtime.alibaba_oss_target", env, self.work_dir, generation
        )
        if new.port != old.port:
            raise ChainError(f"the restarted target listens on {new.port}, not {old.port}")
        self.services.append(new)
        return new

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self._temp.cleanup()

    def __enter__(self) -> Chain:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # ---- the emulated bucket, through the emulator's admin routes

    def objects(self) -> list[dict]:
        """[{key, size, etag, content_type, metadata}] of every object in the bucket, sorted."""
        with _open(f"{self.emulator.url}_emulator/objects/{BUCKET}") as answer:
            return json.load(answer)

    def object(self, key: str) -> StoredObject:
        quoted = urllib.parse.quote(key, safe="")
        url = f"{self.emulator.url}_emulator/object/{BUCKET}/{quoted}"
        with _open(url) as answer:
            metadata = json.loads(answer.headers["X-Emulator-Metadata"])
            return StoredObject(key, answer.read(), answer.headers["Content-Type"], metadata)

    def inject_faults(self, spec: dict) -> None:
        """POST /_emulator/faults, e.g. {"fail_next": {"n": 3, "status": 503}}."""
        request = urllib.request.Request(
            f"{self.emulator.url}_emulator/faults",
            data=json.dumps(spec).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _open(request) as answer:
            answer.read()

    def emulator_stats(self) -> dict:
        with _open(f"{self.emulator.url}_emulator/stats") as answer:
            return json.load(answer)


@dataclass(frozen=True)
class StoredObject:
    key: str
    body: bytes
    content_type: str
    metadata: dict[str, str]


# ---- the COS source function, run from its built zip


def unpack_function(into: Path) -> tuple[Path, Path]:
    """Build the SCF zip with the project's packager and unpack it; returns (zip, directory)."""
    from components.packaging import build_function_package

    package = build_function_package(into / "package")
    code_dir = into / "function"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(code_dir)
    return package, code_dir


@functools.cache
def function_python() -> str:
    """SCF runs Python 3.10: use a 3.10 interpreter when this machine has one that works (a pyenv
    shim may exist without a usable version behind it), else the current interpreter."""
    candidates = [os.environ.get("PYTHON310"), shutil.which("python3.10")]
    candidates += sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.10*/bin/python3.10"))
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run(
                [candidate, "-I", "-c", "import sys; print(sys.version_info[:2] == (3, 10))"],
                env=base_env(),
                capture_output=True,
                text=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip() == "True":
            return candidate
    return sys.executable


# Runs in a fresh isolated interpreter with only the unpacked zip on sys.path, as SCF would.
_INVOKE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import index
event = json.load(sys.stdin)
context = {"function_name": sys.argv[2], "request_id": "demo-request", "time_limit_in_ms": 30000}
try:
    result = {"ok": index.main_handler(event, context)}
except Exception as error:
    result = {"error": f"{type(error).__name__}: {error}"}
print("RESULT " + json.dumps(result))
"""


@dataclass(frozen=True)
class Invocation:
    result: dict | None  # what main_handler returned, None if it raised
    error: str | None
    logs: list[dict]  # the handler's JSON log lines


def invoke_function(
    code_dir: Path, notification: dict, sink_url: str, signing_secret: str, timeout: float = 60
) -> Invocation:
    env = base_env(
        K_SINK=sink_url,
        SINK_SIGNING_SECRET=signing_secret,
        FUNCTION_NAME=FUNCTION_NAME,
        DELIVERY_RETRY_BUDGET_SECONDS="20",
    )
    completed = subprocess.run(
        [function_python(), "-I", "-c", _INVOKE, str(code_dir), FUNCTION_NAME],
        input=json.dumps(notification),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    logs, outcome = [], None
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            outcome = json.loads(line.removeprefix("RESULT "))
        elif line.startswith("{"):
            logs.append(json.loads(line))
    if outcome is None:
        raise ChainError(
            f"the handler process exited with {completed.returncode}:\n{completed.stderr[-2000:]}"
        )
    return Invocation(outcome.get("ok"), outcome.get("error"), logs)


# ---- talking to a service directly

# The seed's `curl` test of the OSS target, verbatim (headers and body).
SEED_CURL_HEADERS = {
    "Content-Type": "application/json",
    "Ce-Specversion": "1.0",
    "Ce-Type": "any.event.type",
    "Ce-Source": "some.origin/intance",
    "Ce-Id": "536808d3-88be-4077-9d7a-a3f162705f79",
}
SEED_CURL_BODY = b'{"message":"Hello from TriggerMesh!"}'


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # names lower-case
    body: bytes


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 30) -> Reply:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _open(request, timeout=timeout) as answer:
            status, answer_headers, data = answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        status, answer_headers, data = error.code, error.headers, error.read()
    return Reply(status, {name.lower(): value for name, value in answer_headers.items()}, data)


# ---- the notification the demo sends


def sample_notification() -> dict:
    """The seed's sample COS notification plus three more records (other keys and event names).

    Each extra record is a copy of the seed's with its own key, event name, time and request id;
    like real records, they all carry the uploader's `Authorization` header, which must not travel.
    """
    seed = json.loads(SEED_NOTIFICATION.read_text(encoding="utf-8"))
    template = seed["Records"][0]
    extra = [
        ("photos/2026/cat.jpg", "cos:ObjectCreated:Put", 1795300000, 48213),
        ("reports/Q3 résumé.pdf", "cos:ObjectCreated:CompleteMultipartUpload", 1795300060, 905311),
        ("tmp/old-upload.bin", "cos:ObjectRemove:Delete", 1795300120, 0),
    ]
    records = [template]
    for number, (key, event_name, event_time, size) in enumerate(extra, start=1):
        record = copy.deepcopy(template)
        bucket = record["cos"]["cosBucket"]
        quoted = urllib.parse.quote(key)
        record["cos"]["cosObject"]["key"] = f"/{bucket['appid']}/{bucket['name']}/{quoted}"
        record["cos"]["cosObject"]["url"] = (
            f"http://{bucket['name']}-{bucket['appid']}.cos.ap-chengdu.myqcloud.com/{quoted}"
        )
        record["cos"]["cosObject"]["size"] = size
        record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = f"demo-request-{number:04d}"
        record["event"]["eventName"] = event_name
        record["event"]["eventTime"] = event_time
        record["event"]["reqid"] = 179398952 + number
        records.append(record)
    return {"Records": records}


def without_credentials(record: dict) -> dict:
    """What the receiver must get for a record: the same, minus the uploader's Authorization."""
    clean = copy.deepcopy(record)
    headers = clean["event"].get("requestParameters", {}).get("requestHeaders", {})
    for name in [name for name in headers if name.lower() == "authorization"]:
        del headers[name]
    return clean
