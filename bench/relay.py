"""Benchmark: the relay's CPU per signed 1 KiB event, and its peak memory under maximum-size bodies.

    .venv/bin/python bench/relay.py            # --events 2000 --runs 5 --concurrency 16

Processes: the relay (`python -m runtime.relay`, default settings, INFO logs to a file, HOST
127.0.0.1), a sink (a bare aiohttp server answering 202) and this load generator, each on its own.
Requests are signed before the clock starts: the figures are the relay's own.

1. CPU per event: events of ~1 KiB (a COS-record-like `data`), each signed per the contract, sent
   with `--concurrency` connections; the relay's user+system CPU over a round / events. Baseline in
   the same run: a bare aiohttp server (read the body, answer 202) under the same load, the floor
   any aiohttp receiver pays per request. Median of `--runs` rounds each.
2. Peak RSS (VmHWM) of a fresh relay with default settings (MEMORY_LIMIT_BYTES unset and no cgroup
   limit here: the 256 MiB default) under 64 concurrent maximum-size (MAX_BODY_BYTES, 256 KiB)
   signed events, then under 64 concurrent maximum-size bodies with valid captured headers that
   are never sent (held until the read deadline) and 64 unsigned ones; printed next to the pod's
   default limit, 256 MiB.
3. Genuine latency under wrong-signature claims (the relay attack's finding 3): `--claimers`
   connections, each in a loop, send well-formed `webhook-*` headers with a wrong signature (no
   key needed) and a Content-Length they never send, until answered (408, 503 `busy` or 413),
   then start over; meanwhile `--probes` genuine signed ~1 KiB events are sent one after another.
   Time from sending a genuine request to its 202: median and maximum, per claim size, next to the
   same probes without claims.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runtime.relay.settings import MAX_BODY_BYTES  # noqa: E402 - needs the root on sys.path
from tests.e2e.chain import (  # noqa: E402 - needs the root on sys.path
    Service,
    _listening_port,
    base_env,
    new_signing_secret,
    start_python_service,
    wait_ready,
)

MIB = 1024 * 1024
KIB = 1024
POD_LIMIT_MIB = 256
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"


# ---------------------------------------------------------------- child role: a bare server


def role_bare(port: int) -> None:
    """Read the body, answer 202: the sink for the relay, and the per-request floor (baseline)."""
    from aiohttp import web

    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    app = web.Application(client_max_size=64 * MIB)
    app.router.add_post("/", accept)
    app.router.add_get("/readyz", lambda request: _ok())
    print(json.dumps({"msg": "listening", "port": port}), flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _ok():
    from aiohttp import web

    return web.Response(text="ok")


def start_bare(log_dir: Path, name: str) -> Service:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = [sys.executable, str(Path(__file__).resolve()), "--role-bare", str(port)]
    service = Service(name, argv, base_env(), log_dir)
    service.port = service.wait_for_line(_listening_port, 30)
    wait_ready(service.url)
    return service


# ---------------------------------------------------- the contract, as the function signs


def signed(key: bytes, event: dict) -> tuple[dict[str, str], bytes]:
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    mac = hmac.new(key, f"{event['id']}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "Content-Type": CONTENT_TYPE,
        "webhook-id": event["id"],
        "webhook-timestamp": stamp,
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }, body


def event(event_id: str, data_bytes: int) -> dict:
    record = {
        "cos": {
            "cosObject": {"key": f"/1250000000/bench/{event_id}", "size": 1024},
            "cosBucket": {"name": "bench", "appid": "1250000000", "region": "ap-guangzhou"},
        },
        "event": {"eventName": "cos:ObjectCreated:Put", "eventTime": 1795300000},
    }
    filler = data_bytes - len(json.dumps(record, separators=(",", ":"))) - 12
    record["padding"] = "x" * max(0, filler)
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "qcs::cos:ap-guangzhou:uid1250000000:bench-1250000000",
        "type": "cos:ObjectCreated:Put",
        "subject": f"bench/{event_id}",
        "time": "2026-11-29T12:00:00Z",
        "datacontenttype": "application/json",
        "data": record,
    }


# ---------------------------------------------------------------- measurements


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found")


async def send_all(url: str, requests: list[tuple[dict, bytes]], concurrency: int) -> dict:
    import aiohttp

    statuses: dict[int, int] = {}
    pending = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for headers, body in pending:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def cpu_round(service: Service, requests: list, concurrency: int) -> float:
    """ms of the service's CPU per request over one round."""
    before = cpu_seconds(service.process.pid)
    statuses = asyncio.run(send_all(service.url, requests, concurrency))
    used = cpu_seconds(service.process.pid) - before
    if set(statuses) != {202}:
        raise SystemExit(f"unexpected answers from {service.name}: {statuses}")
    return used / len(requests) * 1000


async def held_bodies(url: str, headers: dict, count: int, size: int) -> list[bytes]:
    """`count` connections announcing `size`-byte bodies and sending none; returns the answers."""

    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.split(":")[2][:-1]))
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        writer.write(f"POST / HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {size}\r\n\r\n".encode())
        await writer.drain()
        answer = await reader.read(200)
        writer.close()
        return answer

    return await asyncio.gather(*(one() for _ in range(count)))


async def claim_loop(port: int, size: int, stop: float, answers: dict[str, int]) -> None:
    """One attacker connection after another: wrong signature, `size` announced, nothing sent;
    counts the answers by status in `answers`."""
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            fake = base64.b64encode(os.urandom(32)).decode()
            writer.write(
                (
                    f"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\n"
                    f"webhook-id: claim\r\nwebhook-timestamp: {int(time.time())}\r\n"
                    f"webhook-signature: v1,{fake}\r\nContent-Length: {size}\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            remaining = max(0.1, stop - time.monotonic())
            answer = await asyncio.wait_for(reader.read(200), remaining)
            writer.close()
        except (OSError, asyncio.TimeoutError):
            answer = b""
        status = answer[9:12].decode() or "open"
        answers[status] = answers.get(status, 0) + 1
        await asyncio.sleep(0.05)  # not a connect flood: the claims are the attack


async def probe_latency(
    url: str, key: bytes, claimers: int, size: int, probes: int
) -> tuple[list[float], dict[str, int]]:
    """Seconds each genuine event took to its 202 while `claimers` claim `size` bytes each."""
    import aiohttp

    port = int(url.split(":")[2].rstrip("/"))
    stop = time.monotonic() + 3600
    answers: dict[str, int] = {}
    tasks = [asyncio.ensure_future(claim_loop(port, size, stop, answers)) for _ in range(claimers)]
    await asyncio.sleep(1.5 if claimers else 0)  # the claims are in
    latencies = []
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for n in range(probes):
            headers, body = signed(key, event(f"probe-{claimers}-{size}-{n}-{time.time()}", 1024))
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 202:
                    raise SystemExit(f"genuine event answered {response.status}")
            latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return latencies, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--claimers", type=int, default=300)
    parser.add_argument("--probes", type=int, default=10)
    parser.add_argument("--role-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role_bare is not None:
        role_bare(args.role_bare)
        return

    secret = new_signing_secret()
    key = base64.b64decode(secret.removeprefix("whsec_"))
    print(f"bench/relay.py: load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        log_dir = Path(tmp)
        sink = start_bare(log_dir, "sink")
        baseline = start_bare(log_dir, "bare")
        env = {"K_SINK": sink.url, "RELAY_SIGNING_SECRET": secret, "PORT": "0"}
        relay = start_python_service(
            "relay", "runtime.relay", base_env(**env, HOST="127.0.0.1"), log_dir
        )
        try:
            # 1. CPU per ~1 KiB event, relay and bare server alternating round by round.
            size = len(signed(key, event("probe", 1024))[1])
            warm = [signed(key, event(f"warm-{i}", 1024)) for i in range(200)]
            cpu_round(relay, warm, args.concurrency)
            cpu_round(baseline, warm, args.concurrency)
            relay_ms, bare_ms = [], []
            for run in range(args.runs):
                batch = [
                    signed(key, event(f"r{run}-{i}", 1024)) for i in range(args.events)
                ]  # fresh ids: none is a duplicate
                relay_ms.append(cpu_round(relay, batch, args.concurrency))
                bare_ms.append(cpu_round(baseline, batch, args.concurrency))
            relay_median, bare_median = statistics.median(relay_ms), statistics.median(bare_ms)
            print(
                f"CPU per event ({size:,}-byte signed body, {args.events:,} events x "
                f"{args.runs} runs, concurrency {args.concurrency}):"
            )
            print(f"  relay      median {relay_median:.3f} ms  (runs: {_list(relay_ms)})")
            print(f"  bare aiohttp server, same load: median {bare_median:.3f} ms  (baseline)")
            # /proc counts CPU in clock ticks (10 ms): a short run of the bare server can read 0.
            ratio = (
                f"{relay_median / bare_median:.2f}x"
                if bare_median > 0
                else "n/a (baseline below the CPU clock's resolution: use more --events)"
            )
            print(
                f"  ratio relay / baseline {ratio}; "
                f"goal relay <= 0.35 ms: {'met' if relay_median <= 0.35 else 'NOT met'}"
            )
        finally:
            relay.stop()
            baseline.stop()

        # 2. Memory of fresh relays with default settings.
        most = f"{MAX_BODY_BYTES // KIB} KiB"
        for label, attack in (
            (f"64 concurrent {most} signed events", "signed"),
            (f"64 concurrent {most} bodies under captured signed headers, never sent", "held"),
            (f"64 concurrent unsigned {most} bodies", "unsigned"),
        ):
            relay = start_python_service(
                "relay-" + attack, "runtime.relay", base_env(**env, HOST="127.0.0.1"), log_dir
            )
            try:
                before = memory_mib(relay.process.pid, "VmRSS")
                started = time.monotonic()
                if attack == "signed":
                    big = [signed(key, event(f"big-{i}", MAX_BODY_BYTES - 400)) for i in range(64)]
                    assert all(len(body) <= MAX_BODY_BYTES for _, body in big)
                    outcome = asyncio.run(send_all(relay.url, big, 64))
                else:
                    headers = (
                        signed(key, event("captured", 1024))[0]
                        if attack == "held"
                        else {"Content-Type": CONTENT_TYPE}
                    )
                    answers = asyncio.run(held_bodies(relay.url, headers, 64, MAX_BODY_BYTES))
                    outcome = {}
                    for answer in answers:
                        status = answer[9:12].decode() or "closed"
                        outcome[status] = outcome.get(status, 0) + 1
                took = time.monotonic() - started
                peak = memory_mib(relay.process.pid, "VmHWM")
                after = memory_mib(relay.process.pid, "VmRSS")
            finally:
                relay.stop()
            print(
                f"{label}: answers {outcome} in {took:.1f} s; RSS {before:.1f} MiB before, "
                f"peak {peak:.1f} MiB, {after:.1f} MiB after; pod limit {POD_LIMIT_MIB} MiB: "
                f"{'inside' if peak < POD_LIMIT_MIB else 'OVER'}"
            )

        # 3. Genuine latency under wrong-signature claims, on one fresh relay.
        relay = start_python_service(
            "relay-claims", "runtime.relay", base_env(**env, HOST="127.0.0.1"), log_dir
        )
        try:
            print(
                f"Genuine signed event, {args.probes} one after another, while {args.claimers} "
                "connections claim bodies they never send (wrong signature):"
            )
            for claimers, size in (
                (0, 0),
                (args.claimers, MAX_BODY_BYTES),
                (args.claimers, 64 * KIB),
            ):
                latencies, answers = asyncio.run(
                    probe_latency(relay.url, key, claimers, size, args.probes)
                )
                label = f"{size // KIB} KiB claims" if claimers else "no claims (baseline)"
                print(
                    f"  {label}: median {statistics.median(latencies) * 1000:.1f} ms, max "
                    f"{max(latencies) * 1000:.1f} ms; claims answered {answers}"
                )
        finally:
            relay.stop()
        sink.stop()


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


if __name__ == "__main__":
    main()
