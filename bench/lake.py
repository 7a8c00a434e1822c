"""Benchmark: the OSS target as a data lake (rolled gzip NDJSON objects) against one object per
event, same emulator, same run.

    .venv/bin/python bench/lake.py [--events 4000] [--concurrency 200] [--runs 3] [--quick]

Processes: the object-store emulator (verifies every signature, computes CRC-64 and MD5), two
targets (`python -m runtime.alibaba_oss_target`): one with the default settings (one object per
event, key = id) and one with `OSS_KEY_TEMPLATE=dt=%F/{type}/{id}`, `BATCH_MAX_EVENTS=100`,
`BATCH_MAX_SECONDS=1`, `BATCH_COMPRESSION=gzip`; and a load generator (aiohttp, its own process)
sending single-event binary-mode requests of about 300 bytes of JSON data at `--concurrency`
connections (each request is answered only once its event is stored, so an object can fill up by
count only when at least BATCH_MAX_EVENTS requests are in flight: the concurrency is above it).

Each run sends `--events` events to each target, alternating which goes first; events/s is the
median of the runs (min-max beside it), PUTs per 1,000 events come from the emulator's counter of
stored objects, bytes stored from its object listing. Every request must be answered 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.oss_target import (  # noqa: E402
    AK,
    BUCKET,
    SK,
    cpu_seconds,
    free_port,
    launch_target,
    reset_emulator,
    start_emulator,
)

LAKE_ENV = {
    "OSS_KEY_TEMPLATE": "dt=%F/{type}/{id}",
    "BATCH_MAX_EVENTS": "100",
    "BATCH_MAX_SECONDS": "1",
    "BATCH_COMPRESSION": "gzip",
}


def role_load(url: str, concurrency: int, count: int, prefix: str) -> None:
    """POST `count` single-event binary-mode requests; prints elapsed and the statuses."""
    import aiohttp

    async def main() -> dict:
        statuses: dict[int, int] = {}
        numbers = iter(range(count))
        connector = aiohttp.TCPConnector(limit=concurrency)
        timeout = aiohttp.ClientTimeout(total=300)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                for number in numbers:
                    data = {
                        "order": number,
                        "customer": f"customer-{number % 997:04d}",
                        "items": [{"sku": f"SKU-{(number * 7 + i) % 5000:05d}", "qty": i + 1}
                                  for i in range(5)],
                        "currency": "EUR",
                        "total": round(number * 1.37 % 1000, 2),
                        "note": "delivered to the lake by the cloudevents-connectors benchmark",
                    }  # fmt: skip
                    headers = {
                        "Content-Type": "application/json",
                        "Ce-Specversion": "1.0",
                        "Ce-Type": "com.example.order.created",
                        "Ce-Source": "/bench/shop",
                        "Ce-Id": f"{prefix}-{number}",
                        "Ce-Time": "2026-11-29T22:30:45Z",
                    }
                    async with session.post(url, data=json.dumps(data), headers=headers) as answer:
                        await answer.read()
                    statuses[answer.status] = statuses.get(answer.status, 0) + 1

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"statuses": statuses}

    started = time.perf_counter()
    result = asyncio.run(main())
    result["elapsed"] = time.perf_counter() - started
    print(json.dumps(result))


def start_target(endpoint: str, extra: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "OSS_ENDPOINT": endpoint,
        "OSS_BUCKET": BUCKET,
        "OSS_ACCESS_KEY_ID": AK,
        "OSS_ACCESS_KEY_SECRET": SK,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        # The same request concurrency for both targets (the batched one defaults to 200), and
        # room for the load generator's 200 connections (MAX_CONNECTIONS defaults to 64).
        "MAX_IN_FLIGHT": "256",
        "MAX_CONNECTIONS": "256",
        **extra,
    }
    return launch_target(env, port)


def emulator_json(endpoint: str, path: str) -> object:
    with urllib.request.urlopen(endpoint + "/_emulator/" + path, timeout=30) as response:
        return json.loads(response.read())


def run_one(endpoint: str, target: subprocess.Popen, url: str, args, prefix: str) -> dict:
    reset_emulator(endpoint)
    cpu_before = cpu_seconds(target.pid)
    output = subprocess.run(
        [sys.executable, __file__, "--role", "load", url, str(args.concurrency), str(args.events),
         prefix],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    result = json.loads(output.strip().splitlines()[-1])
    if result["statuses"] != {"200": args.events}:
        raise SystemExit(f"{prefix}: answers {result['statuses']}")
    objects = emulator_json(endpoint, f"objects/{BUCKET}")
    stats = emulator_json(endpoint, "stats")
    return {
        "events_per_second": args.events / result["elapsed"],
        "puts_per_1000": stats["stored"] * 1000 / args.events,
        "bytes_per_event": sum(o["size"] for o in objects) / args.events,
        "cpu_ms_per_event": (cpu_seconds(target.pid) - cpu_before) * 1000 / args.events,
    }


def summary(values: list[float], digits: int = 0) -> str:
    median = statistics.median(values)
    return f"{median:,.{digits}f} ({min(values):,.{digits}f}-{max(values):,.{digits}f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="400 events, 1 run (smoke test)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.role == "load":
        role_load(rest[0], int(rest[1]), int(rest[2]), rest[3])
        return
    if args.quick:
        args.events, args.runs = 400, 1
    emulator, endpoint = start_emulator()
    targets = {}
    try:
        targets["one object per event"] = start_target(endpoint, {})
        targets["rolled, gzip NDJSON"] = start_target(endpoint, LAKE_ENV)
        results: dict[str, list[dict]] = {name: [] for name in targets}
        for run in range(args.runs):
            order = list(targets) if run % 2 == 0 else list(reversed(targets))
            for name in order:
                process, url = targets[name]
                results[name].append(run_one(endpoint, process, url, args, f"r{run}-{len(name)}"))
    finally:
        for process, _ in targets.values():
            process.terminate()
            process.wait(10)
        emulator.terminate()
        emulator.wait(10)
    print(
        f"{args.events} single-event requests per run, concurrency {args.concurrency}, "
        f"{args.runs} run(s); medians (min-max)"
    )
    print("| mode | events/s | OSS PUTs per 1,000 events | stored bytes per event | CPU ms/event |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        print(
            f"| {name} | {summary([r['events_per_second'] for r in runs])} "
            f"| {summary([r['puts_per_1000'] for r in runs], 1)} "
            f"| {summary([r['bytes_per_event'] for r in runs])} "
            f"| {summary([r['cpu_ms_per_event'] for r in runs], 2)} |"
        )
    plain, rolled = (results[name] for name in targets)
    pairs = list(zip(plain, rolled, strict=True))
    ratios = [b["events_per_second"] / a["events_per_second"] for a, b in pairs]
    puts = [a["puts_per_1000"] / b["puts_per_1000"] for a, b in pairs]
    print(f"ratio events/s rolled / per event: {summary(ratios, 2)}")
    print(f"PUTs saved: {summary(puts, 0)}x fewer")


if __name__ == "__main__":
    main()
