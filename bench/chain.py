"""Benchmark: 10,000 signed events through relay -> OSS target -> emulator, with faults.

    .venv/bin/python bench/chain.py   # --events 10000 --concurrency 64 --repeats 3

Every service runs in its own process (tests/e2e/chain.py starts them, as for `make demo`); the load
generator is this process: one aiohttp session, `--concurrency` workers, each request signed for the
relay (Standard Webhooks, with the `standardwebhooks` library a sender would use). Like a broker, it
redelivers every event that was not acknowledged (any answer but 2xx, or a network error) with the
same id, after a short pause (Retry-After, capped at 1 s).

The measured run: the emulator fails a random 5 % of object requests with 503 SlowDown, and the OSS
target (the relay's sink) is stopped with SIGTERM and started again on the same port when half of
the events are acknowledged. Baseline, in the same run: the same chain without faults or restart.
The pair is repeated (`--repeats`, 3) with the order flipped each time; rates are medians with
min-max. Afterwards every acknowledged event is read back from the emulator and compared byte for
byte (body and content type): the verdict line counts lost and corrupted events (both must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from standardwebhooks.webhooks import Webhook

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.chain import BUCKET, Chain, Service  # noqa: E402 - needs the root on sys.path

CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"
DATA_CONTENT_TYPE = "application/json"  # what the objects are stored as
MAX_ATTEMPTS = 100
MAX_PAUSE_SECONDS = 1.0


def make_events(count: int, seed: int, prefix: str) -> dict[str, bytes]:
    """COS-record-like JSON bodies of 0.3-2.5 KiB (the relay carries UTF-8 JSON, as from COS)."""
    rng = random.Random(seed)
    events = {}
    for i in range(count):
        record = {
            "cos": {
                "cosObject": {
                    "key": f"/1250000000/bench/obj-{i:05d}",
                    "size": rng.randrange(10**7),
                },
                "cosBucket": {"name": "bench", "appid": "1250000000", "region": "gz"},
            },
            "event": {"eventName": "cos:ObjectCreated:Put", "eventTime": 1795300000 + i},
            "padding": "".join(
                rng.choices("abcdefghijklmnopqrstuvwxyzé✓", k=rng.randrange(50, 2000))
            ),
        }
        # Compact, as the relay re-encodes JSON data (the function's own encoding), so the object
        # stored is byte for byte this.
        events[f"{prefix}-{i:05d}"] = json.dumps(
            {"Records": [record]}, separators=(",", ":"), ensure_ascii=False
        ).encode()
    return events


def structured(event_id: str, data: bytes) -> bytes:
    """The event as the SCF function sends it to the relay: one JSON object, compact, UTF-8."""
    event = {
        "specversion": "1.0",
        "type": "bench.cos.record",
        "source": "bench/chain",
        "id": event_id,
        "datacontenttype": "application/json",
        "data": json.loads(data),
    }
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Run:
    acked: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)  # reason -> count
    latencies: list[float] = field(default_factory=list)  # of acknowledged attempts
    elapsed: float = 0.0
    restart: str = ""
    retired_cpu: dict[str, float] = field(default_factory=dict)  # name -> CPU s of stopped ones


async def drive(
    chain: Chain,
    events: dict[str, bytes],
    concurrency: int,
    restart_at: int | None,
    progress_every: int,
) -> Run:
    webhook = Webhook(chain.signing_secret)
    run = Run()
    queue: asyncio.Queue[str] = asyncio.Queue()
    for event_id in events:
        queue.put_nowait(event_id)
    attempts: dict[str, int] = dict.fromkeys(events, 0)
    remaining = len(events)
    all_done = asyncio.Event()
    half_way = asyncio.Event()
    url = chain.relay.url
    started = time.perf_counter()

    def settle() -> None:
        nonlocal remaining
        remaining -= 1
        done = len(run.acked)
        if restart_at is not None and done >= restart_at:
            half_way.set()
        if done % progress_every == 0 and done:
            rate = done / (time.perf_counter() - started)
            print(f"  {done:>6,} acknowledged  ({rate:,.0f} events/s so far)", flush=True)
        if remaining == 0:
            all_done.set()

    async def attempt(session: aiohttp.ClientSession, event_id: str) -> tuple[str | None, float]:
        """(None, 0) when acknowledged, else (the reason to retry, the pause asked for)."""
        # The relay's contract: the whole event in the signed body (structured mode).
        body = structured(event_id, events[event_id])
        now = datetime.now(timezone.utc)
        headers = {
            "Content-Type": CONTENT_TYPE,
            "webhook-id": event_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": webhook.sign(event_id, now, body.decode("utf-8")),
        }
        sent = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    run.latencies.append(time.perf_counter() - sent)
                    return None, 0.0
                retry_after = response.headers.get("Retry-After", "")
                pause = (
                    float(retry_after) if retry_after.isascii() and retry_after.isdigit() else 0.1
                )
                return f"HTTP {response.status}", pause
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            return type(error).__name__, 0.1

    async def worker(session: aiohttp.ClientSession) -> None:
        while True:
            event_id = await queue.get()
            attempts[event_id] += 1
            run.attempts += 1
            reason, pause = await attempt(session, event_id)
            if reason is None:
                run.acked.add(event_id)
                settle()
                continue
            run.retries[reason] = run.retries.get(reason, 0) + 1
            if attempts[event_id] >= MAX_ATTEMPTS:
                run.failed.add(event_id)
                settle()
                continue
            pause = min(MAX_PAUSE_SECONDS, pause)
            await asyncio.sleep(pause * random.uniform(0.5, 1.0))
            queue.put_nowait(event_id)

    async def restarter() -> None:
        await half_way.wait()
        begun = time.perf_counter()
        old = chain.target
        # Read just before SIGTERM: the few milliseconds of its drain are not counted.
        run.retired_cpu[old.name] = run.retired_cpu.get(old.name, 0.0) + cpu_seconds(old)
        new = await asyncio.to_thread(chain.restart_target)
        down = time.perf_counter() - begun
        run.restart = (
            f"OSS target restarted at {len(run.acked):,} acknowledged events (SIGTERM, drained, "
            f"started again on port {new.port}, ready after {down:.2f} s)"
        )
        print(f"  {run.restart}", flush=True)

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [asyncio.create_task(worker(session)) for _ in range(concurrency)]
        restart_task = asyncio.create_task(restarter()) if restart_at is not None else None
        await all_done.wait()
        run.elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        if restart_task is not None:
            await restart_task
    return run


async def verify(chain: Chain, events: dict[str, bytes], acked: set[str]) -> tuple[int, int, int]:
    """(lost, corrupted, unexpected): acknowledged but missing, stored with other bytes or
    content type, and objects in the bucket that no event of this run explains."""
    base = chain.emulator.url
    lost = corrupted = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=32)) as session:
        async with session.get(f"{base}_emulator/objects/{BUCKET}") as response:
            listing = {entry["key"]: entry for entry in await response.json()}

        async def check(event_id: str) -> None:
            nonlocal lost, corrupted
            if event_id not in listing:
                lost += 1
                return
            async with session.get(f"{base}_emulator/object/{BUCKET}/{event_id}") as response:
                body = await response.read()
            if body != events[event_id] or listing[event_id]["content_type"] != DATA_CONTENT_TYPE:
                corrupted += 1

        await asyncio.gather(*(check(event_id) for event_id in acked))
    unexpected = len(set(listing) - set(events))
    return lost, corrupted, unexpected


def cpu_seconds(service: Service) -> float:
    fields = Path(f"/proc/{service.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else 0.0


def retried_in_logs(chain: Chain, name: str, message: str) -> tuple[int, int]:
    """(events, extra attempts) that needed more than one attempt, from a service's JSON logs
    (every generation of it, so the restarted target counts both)."""
    events = extra = 0
    for service in chain.services:
        if service.name != name:
            continue
        for line in service.lines():
            if f'"{message}"' not in line:
                continue
            attempts = json.loads(line).get("attempts", 1)
            if attempts > 1:
                events += 1
                extra += attempts - 1
    return events, extra


def phase(
    title: str,
    events: dict[str, bytes],
    concurrency: int,
    emulator_args: tuple[str, ...],
    restart: bool,
    relay_env: dict[str, str],
) -> tuple[Run, tuple[int, int, int], dict, dict[str, float]]:
    print(f"\n== {title}", flush=True)
    chain = Chain(
        emulator_args=emulator_args, relay_env=relay_env, on_progress=lambda m: print(f"  {m}")
    )
    with chain:
        cpu = {s.name: -cpu_seconds(s) for s in chain.services}  # minus the start-up
        restart_at = len(events) // 2 if restart else None
        own_cpu = time.process_time()
        run = asyncio.run(drive(chain, events, concurrency, restart_at, max(1, len(events) // 5)))
        cpu["load generator"] = time.process_time() - own_cpu
        for service in chain.services:
            if service.process.poll() is None:
                cpu[service.name] += cpu_seconds(service)
        for name, seconds in run.retired_cpu.items():
            cpu[name] += seconds
        stats = chain.emulator_stats()
        stats["relay_retried"] = retried_in_logs(chain, "relay", "event forwarded")
        stats["target_retried"] = retried_in_logs(chain, "oss-target", "event stored")
        checked = asyncio.run(verify(chain, events, run.acked))
    return run, checked, stats, cpu


def report(label: str, run: Run, checked, stats: dict, cpu: dict, count: int) -> float:
    rate = len(run.acked) / run.elapsed
    lost, corrupted, unexpected = checked
    retries = sum(run.retries.values())
    reasons = ", ".join(f"{reason} x{n:,}" for reason, n in sorted(run.retries.items())) or "none"
    print(
        f"  {label}: {len(run.acked):,}/{count:,} acknowledged in {run.elapsed:.1f} s = "
        f"{rate:,.0f} events/s end to end; latency p50 {percentile(run.latencies, 0.5) * 1e3:.1f}"
        f" ms, p99 {percentile(run.latencies, 0.99) * 1e3:.1f} ms"
    )
    print(f"  sender retries: {retries:,} ({reasons}); gave up on {len(run.failed):,}")
    print(
        f"  emulator: {stats['requests']:,} object requests, {stats['stored']:,} stored, "
        f"{stats.get('injected', 0):,} injected failures {stats.get('errors', {})}"
    )
    relay_events, relay_extra = stats["relay_retried"]
    target_events, target_extra = stats["target_retried"]
    print(
        f"  absorbed inside the chain: the OSS target retried {target_events:,} uploads "
        f"({target_extra:,} extra PUTs), the relay re-forwarded {relay_events:,} events "
        f"({relay_extra:,} extra POSTs)"
    )
    per_event = ", ".join(f"{name} {seconds / count * 1e3:.2f}" for name, seconds in cpu.items())
    print(f"  CPU ms per event: {per_event}")
    print(f"  read back: {lost} lost, {corrupted} corrupted, {unexpected} unexpected objects")
    return rate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--baseline-events", type=int, help="default: as many as --events")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--fail-probability", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeats", type=int, default=3, help="baseline + measured pairs, order flipped each time"
    )
    parser.add_argument(
        "--relay-retry-budget",
        type=float,
        help="the relay's DELIVERY_RETRY_BUDGET_SECONDS (default: its own, 5 s); a small one "
        "makes the relay give up sooner, so the sender's redeliveries take over",
    )
    args = parser.parse_args()
    args.baseline_events = args.baseline_events or args.events
    relay_env = {}
    if args.relay_retry_budget is not None:
        relay_env["DELIVERY_RETRY_BUDGET_SECONDS"] = str(args.relay_retry_budget)

    print(
        f"bench/chain.py: relay -> OSS target -> emulator, concurrency {args.concurrency}, "
        f"{args.repeats} repeat(s) of both phases, interleaved, "
        f"load average {Path('/proc/loadavg').read_text().split()[0]}"
    )
    faults = (
        "--fail-probability",
        str(args.fail_probability),
        "--fail-status",
        "503",
        "--seed",
        str(args.seed),
    )
    base_rates: list[float] = []
    rates: list[float] = []
    problems: list[str] = []
    acknowledged = []
    for repeat in range(args.repeats):

        def run_baseline(repeat: int = repeat) -> None:
            events = make_events(args.baseline_events, args.seed + 1 + 2 * repeat, "base")
            base, checked, stats, cpu = phase(
                f"baseline {repeat + 1}/{args.repeats}: {args.baseline_events:,} events, "
                "no faults, no restart",
                events,
                args.concurrency,
                (),
                restart=False,
                relay_env=relay_env,
            )
            base_rates.append(report("baseline", base, checked, stats, cpu, len(events)))
            if checked[0] or checked[1]:
                problems.append(f"baseline {repeat + 1} lost or corrupted events")

        def run_measured(repeat: int = repeat) -> None:
            events = make_events(args.events, args.seed + 2 * repeat, "evt")
            run, checked, stats, cpu = phase(
                f"measured {repeat + 1}/{args.repeats}: {args.events:,} events, "
                f"{args.fail_probability:.0%} OSS 503s, OSS target restarted midway",
                events,
                args.concurrency,
                faults,
                restart=True,
                relay_env=relay_env,
            )
            rates.append(report("measured", run, checked, stats, cpu, len(events)))
            acknowledged.append(len(run.acked))
            lost, corrupted, _unexpected = checked
            if lost or corrupted:
                problems.append(f"run {repeat + 1}: {lost} lost, {corrupted} corrupted")
            if run.failed:
                problems.append(f"run {repeat + 1}: {len(run.failed)} never acknowledged")
            if not run.restart:
                problems.append(f"run {repeat + 1}: the restart did not happen")
            if stats.get("injected", 0) == 0:
                problems.append(f"run {repeat + 1}: no fault was injected")

        # Flip the order every repeat, so drift in the machine's load hits both phases alike.
        steps = (run_baseline, run_measured)
        for step in steps if repeat % 2 == 0 else reversed(steps):
            step()

    ratios = [rate / base for rate, base in zip(rates, base_rates, strict=True)]
    print(
        f"\nevents/s, median (min-max) of {args.repeats}: baseline {spread(base_rates)}, "
        f"measured {spread(rates)}; measured/baseline {statistics.median(ratios):.2f} "
        f"({min(ratios):.2f}-{max(ratios):.2f})"
    )
    print()
    if problems:
        print(f"chain: FAILED — {'; '.join(problems)}")
        return 1
    print(
        f"chain: OK — {min(acknowledged):,} acknowledged events stored byte-exact in each of "
        f"{args.repeats} measured run(s), 0 lost, 0 corrupted "
        f"({statistics.median(rates):,.0f} events/s with faults and a restart, "
        f"{statistics.median(base_rates):,.0f} without; medians)"
    )
    return 0


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


if __name__ == "__main__":
    raise SystemExit(main())
