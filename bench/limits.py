"""Benchmark: the OSS target's peak memory under N concurrent maximum-size events, default settings.

    .venv/bin/python bench/limits.py            # --events 32 --runs 3

Processes: the object-store emulator, the target (`python -m runtime.alibaba_oss_target` with its
default settings: MAX_BODY_BYTES 16 MiB, MEMORY_LIMIT_BYTES unset and no cgroup limit here, so the
256 MiB default and an in-flight budget of 53 MiB) and this load generator. N binary-mode events
of exactly MAX_BODY_BYTES are sent at once; the target's peak RSS (VmHWM) is printed next to the
pod's default memory limit (256 MiB). Baseline in the same run: the same target's RSS when idle.
A fresh target per run; medians over the runs.

Before the byte budget the same target reached 942 MiB under 32 such events (issue 11).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.chain import start_emulator, start_oss_target  # noqa: E402 - needs the root

MIB = 1024 * 1024
POD_LIMIT_MIB = 256
MAX_BODY_BYTES = 16 * MIB


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found")


async def send(url: str, count: int) -> dict[int, int]:
    import aiohttp

    body = os.urandom(MAX_BODY_BYTES)  # one buffer, sent N times: the generator stays small
    statuses: dict[int, int] = {}
    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=count)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int) -> None:
            headers = {
                "Content-Type": "application/octet-stream",
                "Ce-Specversion": "1.0",
                "Ce-Type": "bench.big",
                "Ce-Source": "bench/limits",
                "Ce-Id": f"big-{i}",
            }
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(one(i) for i in range(count)))
    return statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=32, help="concurrent 16 MiB events")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"bench/limits.py: load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    idle, peaks = [], []
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        for run in range(args.runs):
            emulator = start_emulator(log_dir)
            target = start_oss_target(log_dir, emulator)
            try:
                idle.append(memory_mib(target.process.pid, "VmRSS"))
                started = time.monotonic()
                statuses = asyncio.run(send(target.url, args.events))
                took = time.monotonic() - started
                peaks.append(memory_mib(target.process.pid, "VmHWM"))
            finally:
                target.stop()
                emulator.stop()
            print(
                f"  run {run + 1}: {args.events} x 16 MiB at once -> {statuses} in {took:.1f} s, "
                f"idle {idle[-1]:.1f} MiB, peak {peaks[-1]:.1f} MiB"
            )
    peak = statistics.median(peaks)
    print(
        f"target, default settings, {args.events} concurrent 16 MiB events: peak RSS median "
        f"{peak:.1f} MiB (idle baseline {statistics.median(idle):.1f} MiB, "
        f"{peak / statistics.median(idle):.2f}x); pod limit {POD_LIMIT_MIB} MiB: "
        f"{'inside' if peak < POD_LIMIT_MIB else 'OVER'}"
    )


if __name__ == "__main__":
    main()
