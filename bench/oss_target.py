"""Benchmark: the OSS target against plain oss2 `put_object`, same emulator, same run.

    .venv/bin/python bench/oss_target.py [--quick]

Processes: the object-store emulator, the target (`python -m runtime.alibaba_oss_target`) and the
load generator (aiohttp, binary-mode events) each run in their own process, so none of them shares
a GIL with another. The baseline is plain oss2 in its own process: a default `oss2.Bucket` per
thread, `put_object` with the same bodies and concurrency, against the same emulator.

Prints, per body size and concurrency: events/s, p50/p99 latency, the ratio target/plain-SDK and
the latency the target adds; then the target's peak RSS, and the RSS growth of a fresh target that
stores one 16 MiB event (goal: at most 3x the event size).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "test-bucket"
AK, SK = "bench-ak", "bench-sk"
KIB = 1024
MIB = 1024 * KIB


# ---------------------------------------------------------------- child roles


def role_load(url: str, size: int, concurrency: int, count: int) -> None:
    """Load generator: POST `count` binary-mode events; prints elapsed and latencies as JSON."""
    import aiohttp

    body = os.urandom(size)

    async def main() -> dict:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        next_index = iter(range(count))
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                for i in next_index:
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "Ce-Specversion": "1.0",
                        "Ce-Type": "bench.event",
                        "Ce-Source": "bench",
                        "Ce-Id": f"t-{size}-{concurrency}-{i}",
                    }
                    started = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status] = statuses.get(response.status, 0) + 1

            await worker_pool(worker, concurrency)
        return {"latencies": latencies, "statuses": statuses}

    async def worker_pool(worker, n):
        await asyncio.gather(*(worker() for _ in range(n)))

    cpu_started, started = time.process_time(), time.perf_counter()
    result = asyncio.run(main())
    result["elapsed"] = time.perf_counter() - started
    result["cpu"] = time.process_time() - cpu_started
    print(json.dumps(result))


def role_plain(endpoint: str, size: int, concurrency: int, count: int) -> None:
    """Baseline: plain oss2, a default Bucket per thread, `concurrency` threads."""
    import oss2

    body = os.urandom(size)
    local = threading.local()
    latencies: list[float] = []

    def put(i: int) -> None:
        bucket = getattr(local, "bucket", None)
        if bucket is None:
            bucket = local.bucket = oss2.Bucket(oss2.Auth(AK, SK), endpoint, BUCKET)
        started = time.perf_counter()
        headers = {"Content-Type": "application/octet-stream"}
        bucket.put_object(f"p-{size}-{concurrency}-{i}", body, headers=headers)
        latencies.append(time.perf_counter() - started)

    cpu_started, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(put, range(count)))
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(json.dumps({"latencies": latencies, "elapsed": elapsed, "cpu": cpu}))


def role_cpu(endpoint: str, count: int) -> None:
    """CPU per 1 KiB PUT, one thread: the target's writer against plain `Bucket.put_object`."""
    import oss2

    sys.path.insert(0, str(ROOT))
    from runtime.alibaba_oss_target.settings import TargetSettings
    from runtime.alibaba_oss_target.writer import Oss2Writer

    body = os.urandom(KIB)
    headers = {"Content-Type": "application/octet-stream"}
    writer = Oss2Writer(TargetSettings(endpoint, BUCKET, AK, SK))
    bucket = oss2.Bucket(oss2.Auth(AK, SK), endpoint, BUCKET)
    calls = {
        "writer": lambda key: writer.put(key, body, dict(headers)),
        "plain": lambda key: bucket.put_object(key, body, headers=dict(headers)),
    }
    result = {}
    for name, call in calls.items():
        for i in range(50):
            call(f"cpu-warm-{name}-{i}")
        started = time.process_time()
        for i in range(count):
            call(f"cpu-{name}-{i}")
        result[name] = (time.process_time() - started) / count
    print(json.dumps(result))


# ---------------------------------------------------------------- orchestration


def start_emulator() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.objectstore", "--port", "0", "--bucket", BUCKET,
         "--credentials", f"{AK}:{SK}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    line = process.stdout.readline().strip()
    if not line.startswith("endpoint="):
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return process, line.split("=", 1)[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_target(endpoint: str) -> tuple[subprocess.Popen, str]:
    """The target with its default settings (OSS_MAX_CONCURRENCY 16, INFO logs to /dev/null)."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OSS_ENDPOINT": endpoint,
        "OSS_BUCKET": BUCKET,
        "OSS_ACCESS_KEY_ID": AK,
        "OSS_ACCESS_KEY_SECRET": SK,
        "PORT": str(port),
        "HOST": "127.0.0.1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "runtime.alibaba_oss_target"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "readyz", timeout=1) as response:
                if response.status == 200:
                    return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("target did not become ready")


def child(role: str, *args: object) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--role", role, *map(str, args)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(output.strip().splitlines()[-1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not found")


def summarise(results: list[dict], count: int) -> tuple[float, float, float]:
    """Median events/s over the rounds; p50/p99 over every latency of every round."""
    rate = statistics.median(count / result["elapsed"] for result in results)
    latencies = sorted(latency for result in results for latency in result["latencies"])
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    return rate, p50, p99


def large_event_growth(endpoint: str) -> tuple[int, int, int]:
    """RSS of a fresh target before and at peak around storing one 16 MiB event."""
    process, url = start_target(endpoint)
    try:
        child("load", url, KIB, 1, 20)  # warm up: imports, pools, first connections
        before = memory_kib(process.pid, "VmRSS")
        result = child("load", url, 16 * MIB, 1, 1)
        if result["statuses"] != {"200": 1}:
            raise SystemExit(f"16 MiB event not stored: {result['statuses']}")
        peak = memory_kib(process.pid, "VmHWM")
        return before, peak, peak - before
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer events, one round (smoke run)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per cell")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.role == "load":
        role_load(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        return
    if args.role == "plain":
        role_plain(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        return
    if args.role == "cpu":
        role_cpu(rest[0], int(rest[1]))
        return

    scale, rounds = (0.2, 1) if args.quick else (1.0, args.rounds)
    counts = {(KIB, 1): 300, (KIB, 8): 1000, (KIB, 32): 1200,
              (256 * KIB, 1): 100, (256 * KIB, 8): 200, (256 * KIB, 32): 200}  # fmt: skip
    emulator, endpoint = start_emulator()
    target, url = start_target(endpoint)
    rows = []
    try:
        child("load", url, KIB, 8, 200)  # warm up both paths
        child("plain", endpoint, KIB, 8, 200)
        for (size, concurrency), full_count in counts.items():
            count = max(50, int(full_count * scale))
            measured, plain = [], []
            cpu = {"target": 0.0, "load": 0.0, "emulator": 0.0, "plain": 0.0}
            # Alternate target and baseline so a burst of outside load hits both alike.
            for _ in range(rounds):
                cpu_before = cpu_seconds(target.pid), cpu_seconds(emulator.pid)
                result = child("load", url, size, concurrency, count)
                cpu_after = cpu_seconds(target.pid), cpu_seconds(emulator.pid)
                if result["statuses"] != {"200": count}:
                    raise SystemExit(f"target answered {result['statuses']}")
                measured.append(result)
                plain.append(child("plain", endpoint, size, concurrency, count))
                events = count * rounds
                cpu["target"] += (cpu_after[0] - cpu_before[0]) / events
                cpu["emulator"] += (cpu_after[1] - cpu_before[1]) / events
                cpu["load"] += result["cpu"] / events
                cpu["plain"] += plain[-1]["cpu"] / events
            rows.append(
                (size, concurrency, summarise(measured, count), summarise(plain, count), cpu)
            )
        peak_rss = memory_kib(target.pid, "VmHWM")
    finally:
        target.terminate()
        target.wait(30)
    put_cpu = child("cpu", endpoint, max(100, int(500 * scale)))
    try:
        before, peak, growth = large_event_growth(endpoint)
    finally:
        emulator.terminate()
        emulator.wait(30)

    load1, load5, _ = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs (load average {load1:.1f} / {load5:.1f} at the end); emulator, "
        f"target and load generator in separate processes; {rounds} alternating round(s) per cell, "
        "events/s = median of the rounds\n"
    )
    print("size     conc | target ev/s   p50 ms   p99 ms | plain-oss2 ev/s   p50 ms   p99 ms "
          "| ratio | added p50/p99 ms")  # fmt: skip
    for size, concurrency, (t_rate, t50, t99), (p_rate, p50, p99), _ in rows:
        label = f"{size // KIB} KiB"
        print(
            f"{label:>8} {concurrency:>4} | {t_rate:11.0f} {t50:8.2f} {t99:8.2f} "
            f"| {p_rate:15.0f} {p50:8.2f} {p99:8.2f} | {t_rate / p_rate:5.2f} "
            f"| {t50 - p50:6.2f} / {t99 - p99:6.2f}"
        )
    print("\nCPU ms per event: target process | its load generator | emulator (target run) | "
          "plain-oss2 process (incl. its client role)")  # fmt: skip
    for size, concurrency, _, _, cpu in rows:
        label = f"{size // KIB} KiB"
        print(
            f"{label:>8} {concurrency:>4} | {cpu['target'] * 1000:6.2f} | {cpu['load'] * 1000:6.2f}"
            f" | {cpu['emulator'] * 1000:6.2f} | {cpu['plain'] * 1000:6.2f}"
        )
    print(
        f"\nCPU per 1 KiB PUT, one thread: target writer {put_cpu['writer'] * 1000:.2f} ms, plain "
        f"oss2 put_object {put_cpu['plain'] * 1000:.2f} ms "
        f"({put_cpu['plain'] / put_cpu['writer']:.1f}x)"
    )
    print(f"target peak RSS over the whole run: {peak_rss / 1024:.1f} MiB (goal <= 150 MiB)")
    print(
        f"16 MiB event: RSS {before / 1024:.1f} MiB before, peak {peak / 1024:.1f} MiB, growth "
        f"{growth / 1024:.1f} MiB = {growth * 1024 / (16 * MIB):.2f}x the event (goal <= 3x)"
    )


if __name__ == "__main__":
    main()
