"""Benchmark of the Tencent COS source function's fan-out.

A 1,000-record notification delivered to a local sink (its own process, adding 5 ms to every
answer): the handler (bounded concurrency, default settings) against one-at-a-time sequential
delivery over one keep-alive connection, the upstream's approach, measured in the same run with the
same code. Each is repeated `--runs` times, alternating; the figures are medians. Goal: >= 5x.

The sink is a bare aiohttp app (`--serve-sink`), not the validating test fake: the fake spends about
1 ms of CPU per request on the cloudevents SDK, so on a shared 2-core machine it, not the handler,
set the pace. Checking the events is the tests' job; here the sink counts distinct event ids.

    .venv/bin/python bench/cos_source.py [--records 1000] [--latency 0.005] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import pathlib
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from runtime.tencent_cos_source import cos_delivery, cos_event, index  # noqa: E402
from runtime.tencent_cos_source.cos_settings import load_settings  # noqa: E402

SEED = REPO / "tests" / "runtime" / "fixtures" / "cos_notification_seed.json"
SECRET = "whsec_" + "a2V5LWZvci10aGUtYmVuY2htYXJrLW9ubHktMzItYnl0ZXM="  # a throwaway key
CONTEXT = {"time_limit_in_ms": 900_000}


def notification(records: int) -> dict:
    base = json.loads(SEED.read_text())["Records"][0]
    out = []
    for n in range(records):
        record = copy.deepcopy(base)
        record["cos"]["cosObject"]["key"] = f"/1253970026/testpic/bench/object-{n:05d}.bin"
        record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = f"bench-{n}"
        out.append(record)
    return {"Records": out}


def serve_sink(latency: float) -> None:
    """The benchmark's sink: answers every POST 202 after `latency` seconds, counting distinct
    event ids (`ce-id`, or `webhook-id` in structured mode); `/_sink/stats`, `/_sink/clear`."""
    from aiohttp import web

    seen: set[str] = set()
    counts = {"requests": 0}

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(latency)
        counts["requests"] += 1
        event_id = request.headers.get("ce-id") or request.headers.get("webhook-id")
        if not event_id:
            return web.Response(status=400)
        seen.add(event_id)
        return web.Response(status=202)

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"events": len(seen), **counts})

    async def clear(request: web.Request) -> web.Response:
        seen.clear()
        counts["requests"] = 0
        return web.Response(status=204)

    async def run() -> None:
        app = web.Application()
        app.router.add_get("/_sink/stats", stats)
        app.router.add_post("/_sink/clear", clear)
        app.router.add_post("/", receive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        listener = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, listener).start()
        print(f"url=http://127.0.0.1:{listener.getsockname()[1]}/", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def sink_stats(url: str) -> dict:
    with urllib.request.urlopen(url + "_sink/stats", timeout=10) as answer:
        return json.load(answer)


def sink_clear(url: str) -> None:
    request = urllib.request.Request(url + "_sink/clear", data=b"", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def throughput(records: int, latency: float, runs: int) -> None:
    sink = subprocess.Popen(
        [sys.executable, __file__, "--serve-sink", "--latency", str(latency)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    seconds: dict[str, list[float]] = {"sequential": [], "binary": [], "signed": []}
    cpu_ms: dict[str, list[float]] = {"binary": [], "signed": []}
    try:
        url = sink.stdout.readline().strip().removeprefix("url=")
        settings = {
            "binary": load_settings({"K_SINK": url, "FUNCTION_NAME": "bench"}),
            # As to the relay: structured mode, Standard Webhooks headers.
            "signed": load_settings(
                {"K_SINK": url, "FUNCTION_NAME": "bench", "SINK_SIGNING_SECRET": SECRET}
            ),
        }
        event = notification(records)
        events, _ = cos_event.events_from_notification(event, "bench", datetime.now(timezone.utc))
        for mode in ("binary", "signed"):  # warm-up, not counted: first connections and threads
            _quiet(lambda: index.handle(notification(50), CONTEXT, settings[mode]))  # noqa: B023
        for _ in range(runs):
            # Baseline: the upstream's way, one event after the other (one keep-alive connection).
            sink_clear(url)
            started = time.perf_counter()
            outcomes = cos_delivery.deliver_all(
                events,
                cos_delivery.Sender(url),
                cos_delivery.RetryPolicy(10.0, 0.2, 5.0),
                1,
                time.monotonic() + 600,
                lambda outcome: None,
            )
            seconds["sequential"].append(time.perf_counter() - started)
            assert all(o.delivered for o in outcomes) and sink_stats(url)["events"] == records

            # The handler as deployed (default settings), logging included.
            for mode in ("binary", "signed"):
                sink_clear(url)
                started, cpu_started = time.perf_counter(), time.process_time()
                _quiet(lambda: index.handle(event, CONTEXT, settings[mode]))  # noqa: B023
                seconds[mode].append(time.perf_counter() - started)
                cpu_ms[mode].append((time.process_time() - cpu_started) / records * 1000)
                assert sink_stats(url)["events"] == records
    finally:
        sink.terminate()
        sink.wait(10)
    sequential = statistics.median(seconds["sequential"])
    print(
        f"{records} records, sink latency {latency * 1000:.0f} ms, medians of {runs} runs: "
        f"sequential (baseline) {records / sequential:,.0f} events/s ({sequential:.2f} s)"
    )
    for mode, label in (("binary", "binary mode"), ("signed", "signed structured mode")):
        handler = statistics.median(seconds[mode])
        ratios = sorted(s / h for s, h in zip(seconds["sequential"], seconds[mode], strict=True))
        print(
            f"handler, {label} (concurrency {settings[mode].concurrency}): "
            f"{records / handler:,.0f} events/s ({handler:.2f} s): "
            f"{sequential / handler:.1f}x (goal >= 5x; per run {ratios[0]:.1f}-{ratios[-1]:.1f}x); "
            f"its own CPU {statistics.median(cpu_ms[mode]):.2f} ms per event"
        )


def _quiet(call):
    """Run without the per-event JSON log lines on the terminal (they are still produced)."""
    import io

    saved, sys.stdout = sys.stdout, io.StringIO()
    try:
        return call()
    finally:
        sys.stdout = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(args.latency)
    else:
        throughput(args.records, args.latency, args.runs)


if __name__ == "__main__":
    main()
