"""Benchmark: the OSS target's peak memory under N concurrent maximum-size events, default settings.

    .venv/bin/python bench/limits.py            # --events 32 --runs 3
    .venv/bin/python bench/limits.py --kind json --events 64   # hostile input, see --kind

Processes: the object-store emulator, the target (`python -m runtime.alibaba_oss_target` with its
default settings: MAX_BODY_BYTES 16 MiB, MEMORY_LIMIT_BYTES unset and no cgroup limit here, so the
256 MiB default and an in-flight budget of 48 MiB) and this load generator. N binary-mode events
of exactly MAX_BODY_BYTES are sent at once (`--kind binary`); or what costs more than its bytes:
`json`, N structured events whose data is `[[]],[[]],...` at the JSON limit (1 MiB, parsed into
~33 MiB of Python objects each); `gzip`, N binary events with `Content-Encoding: gzip` bombs
(16 KB that inflate to 16 MiB); `heads`, N connections holding 31 header lines of 8000 bytes
without the blank line. Then the target's peak RSS (VmHWM) is printed next to the
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


JSON_LIMIT = MIB  # the in-flight budget (48 MiB) / JSON_MEMORY_FACTOR (48)


def hostile_body(kind: str) -> tuple[bytes, dict[str, str]]:
    if kind == "json":
        head = b'{"specversion":"1.0","id":"j","source":"s","type":"t","data":['
        count = (JSON_LIMIT - len(head) - 8) // 5
        body = head + b"[[]]," * count + b"[]]}"
        return body, {"Content-Type": "application/cloudevents+json"}
    import gzip

    return gzip.compress(b"\0" * (MAX_BODY_BYTES - 64), 9), {"Content-Encoding": "gzip"}


async def hold_heads(url: str, count: int) -> dict[int, int]:
    """`count` connections each holding an unfinished head. Returns {status: connections}: 503
    answered on accept, 0 reset, 1 still held open after a second."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    head = b"POST / HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"x-h%d: %s\r\n" % (i, b"a" * 8000) for i in range(31)
    )
    writers = []
    for _ in range(count):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head)
        writers.append((reader, writer))
    await asyncio.sleep(1.0)
    statuses: dict[int, int] = {}
    for reader, writer in writers:
        try:
            data = await asyncio.wait_for(reader.read(12), 0.05)
        except asyncio.TimeoutError:
            data = b""  # still held open
        except ConnectionError:
            data = b"HTTP/1.1 000"  # reset by the target: counted as status 0
        if data.startswith(b"HTTP/1."):
            status = int(data[9:12])
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()
    statuses[1] = count - sum(statuses.values())  # 1: still held open
    return statuses


async def send(url: str, count: int, kind: str = "binary") -> dict[int, int]:
    import aiohttp

    if kind == "heads":
        return await hold_heads(url, count)
    extra: dict[str, str] = {}
    if kind == "binary":
        body = os.urandom(MAX_BODY_BYTES)  # one buffer, sent N times: the generator stays small
    else:
        body, extra = hostile_body(kind)
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
                **extra,
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
    parser.add_argument("--kind", choices=("binary", "json", "gzip", "heads"), default="binary")
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
                statuses = asyncio.run(send(target.url, args.events, args.kind))
                took = time.monotonic() - started
                peaks.append(memory_mib(target.process.pid, "VmHWM"))
            finally:
                target.stop()
                emulator.stop()
            print(
                f"  run {run + 1}: {args.events} x {args.kind} at once -> {statuses} "
                f"in {took:.1f} s, "
                f"idle {idle[-1]:.1f} MiB, peak {peaks[-1]:.1f} MiB"
            )
    peak = statistics.median(peaks)
    print(
        f"target, default settings, {args.events} concurrent {args.kind} requests: peak RSS median "
        f"{peak:.1f} MiB (idle baseline {statistics.median(idle):.1f} MiB, "
        f"{peak / statistics.median(idle):.2f}x); pod limit {POD_LIMIT_MIB} MiB: "
        f"{'inside' if peak < POD_LIMIT_MIB else 'OVER'}"
    )


if __name__ == "__main__":
    main()
