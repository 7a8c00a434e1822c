"""Benchmark: the OSS target against a plain oss2 thread pool, same emulator, same run.

    .venv/bin/python bench/oss_target.py [--rounds 3] [--quick | --large]

Processes: the object-store emulator (verifies every V1/V4 signature and computes the CRC-64), the
target (`python -m runtime.alibaba_oss_target`, default settings), the load generator (aiohttp,
binary-mode events) and the baseline each run in their own process, so none shares a GIL with
another. The baseline is plain oss2 as an application would use it: a default `oss2.Bucket` per
thread of a `concurrency`-sized thread pool calling `put_object` with the same bodies.

Every cell (body size x concurrency) runs target and baseline alternately `--rounds` times, the
order flipped every round; events/s is the median of the rounds with the min-max beside it, and the
ratio is the median of the per-round ratios. CPU ms per event is the target process's CPU time
(/proc) over the events it stored. Then: /healthz latency while 8 MiB events stream in at
concurrency 16 (a probe every 10 ms, `--rounds` times), the target's peak RSS (VmHWM; the target
runs with MEMORY_LIMIT_BYTES = 256 MiB, as in a default pod), and the target's ceiling
against a do-nothing OSS (answers 200 at once, checks nothing) at 1 KiB.
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
POD_LIMIT_MIB = 256  # the component's default memory limit for the target's container
MEMORY_LIMIT_MIB = POD_LIMIT_MIB  # what the target is told its limit is (--memory-limit-mib)

# (size, concurrency) -> events per round. Large bodies get fewer events (a round stays ~1-4 s).
CELLS = {
    (KIB, 1): 300, (KIB, 8): 800, (KIB, 32): 1000, (KIB, 64): 1000,
    (MIB, 1): 40, (MIB, 8): 100, (MIB, 32): 128, (MIB, 64): 128,
    (8 * MIB, 1): 8, (8 * MIB, 16): 32, (8 * MIB, 64): 64,
}  # fmt: skip
QUICK_CELLS = {(KIB, 8): 200, (MIB, 8): 24, (8 * MIB, 16): 16}
LARGE_CELLS = {cell: count for cell, count in CELLS.items() if cell[0] == 8 * MIB}


# ---------------------------------------------------------------- child roles


def role_load(url: str, size: int, concurrency: int, count: int, prefix: str) -> None:
    """Load generator: POST `count` binary-mode events; prints elapsed, latencies, statuses."""
    import aiohttp

    body = os.urandom(size)

    async def main() -> dict:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        next_index = iter(range(count))
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                for i in next_index:
                    headers = {
                        "Content-Type": "application/octet-stream",
                        "Ce-Specversion": "1.0",
                        "Ce-Type": "bench.event",
                        "Ce-Source": "bench",
                        "Ce-Id": f"{prefix}-{size}-{concurrency}-{i}",
                    }
                    started = time.perf_counter()
                    async with session.post(url, data=body, headers=headers) as response:
                        await response.read()
                    latencies.append(time.perf_counter() - started)
                    statuses[response.status] = statuses.get(response.status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"latencies": latencies, "statuses": statuses}

    started = time.perf_counter()
    result = asyncio.run(main())
    result["elapsed"] = time.perf_counter() - started
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
    """CPU per 1 KiB PUT, one at a time: the target's writer (asyncio SDK) against plain oss2."""
    import logging

    import oss2

    sys.path.insert(0, str(ROOT))
    from runtime.alibaba_oss_target.credentials import RefreshingCredentials, StaticSource
    from runtime.alibaba_oss_target.settings import TargetSettings
    from runtime.alibaba_oss_target.writer import OssWriter

    body = os.urandom(KIB)
    headers = {"Content-Type": "application/octet-stream"}

    async def writer_cpu() -> float:
        credentials = RefreshingCredentials(StaticSource(AK, SK), logging.getLogger("bench"))
        await credentials.refresh()
        writer = OssWriter(TargetSettings(endpoint, BUCKET, AK, SK), credentials)
        for i in range(50):
            await writer.put(f"cpu-warm-w-{i}", body, dict(headers))
        started = time.process_time()
        for i in range(count):
            await writer.put(f"cpu-w-{i}", body, dict(headers))
        spent = time.process_time() - started
        await writer.close()
        return spent / count

    bucket = oss2.Bucket(oss2.Auth(AK, SK), endpoint, BUCKET)
    for i in range(50):
        bucket.put_object(f"cpu-warm-p-{i}", body, headers=dict(headers))
    started = time.process_time()
    for i in range(count):
        bucket.put_object(f"cpu-p-{i}", body, headers=dict(headers))
    plain = (time.process_time() - started) / count
    print(json.dumps({"writer": asyncio.run(writer_cpu()), "plain": plain}))


def role_probe(url: str, seconds: float) -> None:
    """GET /healthz every 10 ms for `seconds`; prints the latencies."""
    latencies = []
    deadline = time.monotonic() + seconds
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].strip("/")))) as sock:
        request = b"GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n"
        reader = sock.makefile("rb")
        while time.monotonic() < deadline:
            started = time.perf_counter()
            sock.sendall(request)
            length = 0
            while (line := reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            reader.read(length)
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
    print(json.dumps({"latencies": latencies}))


def role_null_oss() -> None:
    """A do-nothing OSS: reads the body, answers 200 with an ETag, checks nothing."""
    from aiohttp import web

    async def put(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(
            status=200,
            headers={"ETag": '"0123456789ABCDEF0123456789ABCDEF"', "x-oss-request-id": "NULL"},
        )

    async def main() -> None:
        app = web.Application(client_max_size=64 * MIB)
        app.router.add_put("/{tail:.*}", put)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(f"endpoint=http://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# ---------------------------------------------------------------- orchestration


def start_emulator(port: int = 0) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.objectstore", "--port", str(port), "--bucket", BUCKET,
         "--credentials", f"{AK}:{SK}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    return process, endpoint_line(process)


def start_null_oss() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--role", "null-oss"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    return process, endpoint_line(process)


def endpoint_line(process: subprocess.Popen) -> str:
    line = process.stdout.readline().strip()
    if not line.startswith("endpoint="):
        process.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return line.split("=", 1)[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_target(
    endpoint: str, extra: dict[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """The target with its default settings (INFO logs to /dev/null) and the pod's memory limit
    (`MEMORY_LIMIT_MIB`, the component's default unless --memory-limit-mib says otherwise),
    plus `extra` settings; on `port`, else a free one."""
    port = port or free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OSS_ENDPOINT": endpoint,
        "OSS_BUCKET": BUCKET,
        "OSS_ACCESS_KEY_ID": AK,
        "OSS_ACCESS_KEY_SECRET": SK,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # What the component sets in the pod (its default 256 Mi limit): the receiving core
        # derives its in-flight byte budget from it, as it would from the cgroup.
        "MEMORY_LIMIT_BYTES": str(MEMORY_LIMIT_MIB * MIB),
        **(extra or {}),
    }
    return launch_target(env, port)


def launch_target(env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    """`python -m runtime.alibaba_oss_target` with exactly `env` (logs to /dev/null), once its
    /readyz on `port` answers 200 (SystemExit after 20 s)."""
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


def reset_emulator(endpoint: str) -> None:
    """Forget stored objects between cells (8 MiB x 64 events adds up)."""
    request = urllib.request.Request(endpoint + "/_emulator/reset", method="POST", data=b"")
    urllib.request.urlopen(request, timeout=10).close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def run_target(target: subprocess.Popen, url: str, size: int, conc: int, count: int) -> dict:
    cpu_before = cpu_seconds(target.pid)
    result = child("load", url, size, conc, count, "t")
    if result["statuses"] != {"200": count}:
        raise SystemExit(f"target answered {result['statuses']} at {size} B x {conc}")
    result["cpu"] = cpu_seconds(target.pid) - cpu_before
    return result


def measure_cells(cells, rounds, target, url, endpoint, *, reset=True) -> list[dict]:
    rows = []
    for (size, conc), count in cells.items():
        target_runs, plain_runs = [], []
        for round_index in range(rounds):
            # Alternate who goes first, so a burst of outside load hits both alike.
            if round_index % 2 == 0:
                target_runs.append(run_target(target, url, size, conc, count))
                plain_runs.append(child("plain", endpoint, size, conc, count))
            else:
                plain_runs.append(child("plain", endpoint, size, conc, count))
                target_runs.append(run_target(target, url, size, conc, count))
        if reset:
            reset_emulator(endpoint)
        rows.append(
            {
                "size": size,
                "conc": conc,
                "target": [count / run["elapsed"] for run in target_runs],
                "plain": [count / run["elapsed"] for run in plain_runs],
                "ratios": [
                    plain["elapsed"] / run["elapsed"]
                    for run, plain in zip(target_runs, plain_runs, strict=True)
                ],
                "target_cpu_ms": statistics.median(r["cpu"] / count * 1000 for r in target_runs),
                "plain_cpu_ms": statistics.median(r["cpu"] / count * 1000 for r in plain_runs),
                "target_p50": percentile([x for r in target_runs for x in r["latencies"]], 0.5),
                "target_p99": percentile([x for r in target_runs for x in r["latencies"]], 0.99),
                "plain_p50": percentile([x for r in plain_runs for x in r["latencies"]], 0.5),
                "plain_p99": percentile([x for r in plain_runs for x in r["latencies"]], 0.99),
            }
        )
    return rows


def healthz_under_load(url: str, count: int) -> tuple[dict, dict]:
    """8 MiB events at concurrency 16 while a probe GETs /healthz every 10 ms."""
    load = subprocess.Popen(
        [sys.executable, __file__, "--role", "load", url, str(8 * MIB), "16", str(count), "h"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.3)  # let the large bodies start flowing
    probe = child("probe", url, 2.0)
    output, _ = load.communicate(timeout=300)
    return probe, json.loads(output.strip().splitlines()[-1])


NULL_CELLS = {(KIB, 32): 1500, (MIB, 16): 160, (8 * MIB, 16): 48}
QUICK_NULL_CELLS = {(KIB, 32): 300, (8 * MIB, 16): 16}
LARGE_NULL_CELLS = {(8 * MIB, 16): 48}


def ceiling(null_endpoint: str, cells: dict, rounds: int) -> list[dict]:
    """Target and plain oss2 against the do-nothing OSS: what each costs without the emulator's
    share of the CPU (signature checks, CRC-64, MD5) in the way."""
    target, url = start_target(null_endpoint)
    try:
        child("load", url, KIB, 8, 200, "w")
        return measure_cells(cells, rounds, target, url, null_endpoint, reset=False)
    finally:
        target.terminate()
        target.wait(30)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.0f} ({min(values):.0f}-{max(values):.0f})"


def label(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def print_rows(rows: list[dict]) -> None:
    print("size    conc | target ev/s        p50/p99 ms    | plain-oss2 ev/s    p50/p99 ms    "
          "| target/plain (min-max) | CPU ms/event target  plain")  # fmt: skip
    for row in rows:
        ratios = row["ratios"]
        print(
            f"{label(row['size']):>7} {row['conc']:>4} | {spread(row['target']):>18} "
            f"{row['target_p50'] * 1000:6.1f}/{row['target_p99'] * 1000:<6.1f} "
            f"| {spread(row['plain']):>18} "
            f"{row['plain_p50'] * 1000:6.1f}/{row['plain_p99'] * 1000:<6.1f} "
            f"| {statistics.median(ratios):5.2f} ({min(ratios):.2f}-{max(ratios):.2f})      "
            f"| {row['target_cpu_ms']:8.2f} {row['plain_cpu_ms']:8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="three small cells, one round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per cell")
    parser.add_argument("--large", action="store_true", help="only the 8 MiB cells and probes")
    parser.add_argument(
        "--memory-limit-mib", type=int, default=POD_LIMIT_MIB, help="the target's MEMORY_LIMIT"
    )
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.role == "load":
        role_load(rest[0], int(rest[1]), int(rest[2]), int(rest[3]), rest[4])
        return
    if args.role == "plain":
        role_plain(rest[0], int(rest[1]), int(rest[2]), int(rest[3]))
        return
    if args.role == "cpu":
        role_cpu(rest[0], int(rest[1]))
        return
    if args.role == "probe":
        role_probe(rest[0], float(rest[1]))
        return
    if args.role == "null-oss":
        role_null_oss()
        return

    global MEMORY_LIMIT_MIB
    MEMORY_LIMIT_MIB = args.memory_limit_mib
    cells, rounds = (QUICK_CELLS, 1) if args.quick else (CELLS, max(1, args.rounds))
    null_cells = QUICK_NULL_CELLS if args.quick else NULL_CELLS
    if args.large:
        cells, null_cells = LARGE_CELLS, LARGE_NULL_CELLS
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    emulator, endpoint = start_emulator()
    null_oss, null_endpoint = start_null_oss()
    try:
        target, url = start_target(endpoint)
        try:
            child("load", url, KIB, 8, 200, "w")  # warm up both paths
            child("plain", endpoint, KIB, 8, 200)
            rows = measure_cells(cells, rounds, target, url, endpoint)
            probes = [healthz_under_load(url, 24 if args.quick else 64) for _ in range(rounds)]
            reset_emulator(endpoint)
            peak_rss = memory_kib(target.pid, "VmHWM")
            put_cpu = child("cpu", endpoint, 200 if args.quick else 1000)
        finally:
            target.terminate()
            target.wait(30)
        limits = ceiling(null_endpoint, null_cells, rounds)
    finally:
        for process in (emulator, null_oss):
            process.terminate()
            process.wait(30)

    load_end = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPUs shared with other work (load average {load_start:.1f} at the "
        f"start, {load_end:.1f} at the end); emulator, target, load generator and baseline in "
        f"separate processes; {rounds} interleaved round(s) per cell: median (min-max); "
        f"{time.monotonic() - started:.0f} s in all\n"
    )
    print_rows(rows)
    p99s = [percentile(probe["latencies"], 0.99) * 1000 for probe, _ in probes]
    for index, (probe, large) in enumerate(probes):
        health = probe["latencies"]
        print(
            f"\n/healthz while 8 MiB events arrive at concurrency 16, repeat {index + 1} "
            f"({len(health)} probes, {sum(large['statuses'].values())} events, "
            f"{large['statuses']}): p50 {percentile(health, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(health, 0.99) * 1000:.1f} ms, max {max(health) * 1000:.1f} ms"
        )
    print(
        f"/healthz p99 over {len(p99s)} repeat(s): median {statistics.median(p99s):.1f} ms "
        f"({min(p99s):.1f}-{max(p99s):.1f}) (goal p99 <= 50 ms)"
    )
    print(
        f"target peak RSS over the whole run (VmHWM): {peak_rss / 1024:.1f} MiB "
        f"(MEMORY_LIMIT_BYTES {MEMORY_LIMIT_MIB} MiB; the component's default memory limit: "
        f"{POD_LIMIT_MIB} MiB)"
    )
    print(
        f"CPU per 1 KiB PUT, one at a time: the target's writer {put_cpu['writer'] * 1000:.2f} ms, "
        f"plain oss2 put_object {put_cpu['plain'] * 1000:.2f} ms"
    )
    print("\nAgainst a do-nothing OSS (answers 200 at once; no signature, CRC or MD5 work):")
    print_rows(limits)


if __name__ == "__main__":
    main()
