"""`python -m runtime.alibaba_oss_target` as a real process: settings errors, start-up, load with
injected faults, and SIGTERM in the middle of load (no acknowledged event may be lost)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiohttp
import pytest

from tests.fakes.objectstore import ObjectStoreEmulator

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "test-bucket"
SECRET = "proc-secret-7Hd2Kq"


def base_env(**env: str) -> dict[str, str]:
    # A clean environment: nothing inherited (no proxies, no stray OSS_* from the developer).
    return {"PATH": os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1", **env}


def run_target(env: dict[str, str], timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "runtime.alibaba_oss_target"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


VALID = {
    "OSS_ENDPOINT": "http://127.0.0.1:9",
    "OSS_BUCKET": BUCKET,
    "OSS_ACCESS_KEY_ID": "test-ak",
    "OSS_ACCESS_KEY_SECRET": SECRET,
}


@pytest.mark.parametrize(
    ("change", "name"),
    [
        ({"OSS_BUCKET": None}, "OSS_BUCKET"),
        ({"OSS_ACCESS_KEY_SECRET": None}, "OSS_ACCESS_KEY_SECRET"),
        ({"OSS_ENDPOINT": "ftp://oss.example.com"}, "OSS_ENDPOINT"),
        ({"PORT": SECRET}, "PORT"),
    ],
)
def test_bad_settings_exit_2_with_one_line_naming_the_setting(change, name):
    env = {k: v for k, v in {**VALID, **change}.items() if v is not None}
    result = run_target(base_env(**env))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout


class TargetProcess:
    """The target in its own process on an ephemeral port; stdout (JSON logs) is collected."""

    def __init__(self, endpoint: str, **env: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime.alibaba_oss_target"],
            cwd=ROOT,
            env=base_env(
                **{
                    **VALID,
                    "OSS_ENDPOINT": endpoint,
                    "PORT": "0",
                    "HOST": "127.0.0.1",
                    "DRAIN_TIMEOUT_SECONDS": "10",
                },
                **env,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._port: int | None = None
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._listening.wait(20):
            self.process.kill()
            raise RuntimeError("target did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self._port is None and '"listening"' in line:
                self._port = json.loads(line)["port"]
                self._listening.set()
        self._listening.set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/"

    def terminate(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)


@pytest.fixture
def store():
    with ObjectStoreEmulator(credentials={"test-ak": SECRET}, buckets=[BUCKET]) as emulator:
        yield emulator


def headers_for(key: str) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Ce-Specversion": "1.0",
        "Ce-Type": "load.test",
        "Ce-Source": "tests",
        "Ce-Id": key,
    }


def test_serves_and_stops_cleanly_on_sigterm(store):
    target = TargetProcess(store.endpoint)
    try:
        import requests

        assert requests.get(target.url + "readyz", timeout=5).status_code == 200
        response = requests.post(target.url, data=b"hi", headers=headers_for("p-1"), timeout=10)
        assert response.status_code == 200
        assert target.terminate() == 0
    finally:
        target.kill()
    assert store.get(BUCKET, "p-1").body == b"hi"
    messages = [json.loads(line)["msg"] for line in target.lines]
    # Credentials are in hand before the port opens.
    assert messages[:2] == ["credentials loaded", "listening"]
    assert messages[-2:] == ["draining", "stopped"]
    assert "event stored" in messages


async def drive(url, events, concurrency, stop_after=None):
    """POST every (key, body) with `concurrency` workers; returns {key: status or exception}."""
    results: dict[str, object] = {}
    queue = list(events.items())
    queue.reverse()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            while queue:
                key, body = queue.pop()
                try:
                    async with session.post(url, data=body, headers=headers_for(key)) as response:
                        await response.read()
                        results[key] = response.status
                except (aiohttp.ClientError, OSError) as error:
                    results[key] = error
                if stop_after is not None and stop_after.is_set():
                    return

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


@pytest.mark.slow
def test_2000_events_at_concurrency_32_with_10_percent_faults_are_all_stored(store):
    rng = random.Random(11)
    events = {f"load-{i:05d}": rng.randbytes(rng.randrange(1, 2048)) for i in range(2000)}
    store.fail_randomly(0.05, status=503, code="SlowDown", seed=1)
    store.drop_randomly(0.05, seed=2)
    target = TargetProcess(store.endpoint, OSS_MAX_CONCURRENCY="32")
    try:
        results = asyncio.run(drive(target.url, events, concurrency=32))
        assert target.terminate() == 0
    finally:
        target.kill()
    assert {key: status for key, status in results.items() if status != 200} == {}
    stats = store.stats
    assert stats.drops > 50 and stats.injected > 50  # the faults really happened
    for key, body in events.items():
        assert store.get(BUCKET, key).body == body, key


@pytest.mark.slow
def test_sigterm_during_load_loses_no_acknowledged_event(store):
    rng = random.Random(12)
    events = {f"term-{i:05d}": rng.randbytes(rng.randrange(1, 4096)) for i in range(4000)}
    store.set_latency(0.02)  # keeps uploads in flight when the signal arrives
    store.fail_randomly(0.05, seed=3)
    target = TargetProcess(store.endpoint, OSS_MAX_CONCURRENCY="16")
    results: dict[str, object] = {}
    try:

        def load():
            results.update(asyncio.run(drive(target.url, events, concurrency=24)))

        loader = threading.Thread(target=load)
        loader.start()
        deadline = time.monotonic() + 20
        while store.stats.stored < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        code = target.terminate()
        loader.join(60)
    finally:
        target.kill()
    assert code == 0
    acknowledged = [key for key, status in results.items() if status == 200]
    refused = [key for key, status in results.items() if status != 200]
    assert len(acknowledged) >= 200
    assert refused, "the load should still have been running at SIGTERM"
    for key in acknowledged:
        stored = store.get(BUCKET, key)
        assert stored is not None and stored.body == events[key], key
    messages = [json.loads(line)["msg"] for line in target.lines]
    assert messages[-1] == "stopped"
    assert SECRET not in "\n".join(target.lines)
