"""bench/chain.py stays runnable, and its read-back check catches lost and corrupted events."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys

import oss2
import pytest

from tests.e2e.chain import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, ROOT, Chain, base_env

BENCH = ROOT / "bench" / "chain.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_chain", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_read_back_counts_lost_corrupted_and_unexpected_objects():
    bench = load_bench()
    events = bench.make_events(40, seed=3, prefix="t")
    with Chain() as chain:
        run = asyncio.run(bench.drive(chain, events, 8, None, 1000))
        assert run.acked == set(events) and not run.failed
        assert asyncio.run(bench.verify(chain, events, run.acked)) == (0, 0, 0)

        store = oss2.Bucket(
            oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), chain.emulator.url.rstrip("/"), BUCKET
        )
        keys = sorted(events)
        store.delete_object(keys[0])
        store.put_object(keys[1], events[keys[1]] + b" ", headers={"Content-Type": "text/json"})
        store.put_object(keys[2], events[keys[2]], headers={"Content-Type": "text/plain"})
        store.put_object("stray", b"x")
        assert asyncio.run(bench.verify(chain, events, run.acked)) == (1, 2, 1)


@pytest.mark.slow
def test_the_benchmark_runs_small_and_prints_its_verdict():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--events", "300", "--concurrency", "16"],
        cwd=ROOT,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith("chain: OK — 300 acknowledged events")
    assert "OSS target restarted at" in done.stdout
