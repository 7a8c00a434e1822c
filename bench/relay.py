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
   limit here: the 256 MiB default) under 64 concurrent maximum-size (1 MiB) signed events, then
   under 64 concurrent 1 MiB bodies with valid captured headers that are never sent (held until the
   read deadline) and 64 unsigned ones; printed next to the pod's default limit, 256 MiB.
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

from tests.e2e.chain import (  # noqa: E402 - needs the root on sys.path
    Service,
    _listening_port,
    base_env,
    new_signing_secret,
    start_python_service,
    wait_ready,
)

MIB = 1024 * 1024
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
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
            print(
                f"  ratio relay / baseline {relay_median / bare_median:.2f}x; "
                f"goal relay <= 0.35 ms: {'met' if relay_median <= 0.35 else 'NOT met'}"
            )
        finally:
            relay.stop()
            baseline.stop()

        # 2. Memory of fresh relays with default settings.
        for label, attack in (
            ("64 concurrent 1 MiB signed events", "signed"),
            ("64 concurrent 1 MiB bodies under captured signed headers, never sent", "held"),
            ("64 concurrent unsigned 1 MiB bodies", "unsigned"),
        ):
            relay = start_python_service(
                "relay-" + attack, "runtime.relay", base_env(**env, HOST="127.0.0.1"), log_dir
            )
            try:
                before = memory_mib(relay.process.pid, "VmRSS")
                started = time.monotonic()
                if attack == "signed":
                    big = [signed(key, event(f"big-{i}", MIB - 400)) for i in range(64)]
                    assert all(len(body) <= MIB for _, body in big)
                    outcome = asyncio.run(send_all(relay.url, big, 64))
                else:
                    headers = (
                        signed(key, event("captured", 1024))[0]
                        if attack == "held"
                        else {"Content-Type": CONTENT_TYPE}
                    )
                    answers = asyncio.run(held_bodies(relay.url, headers, 64, MIB))
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
        sink.stop()


def _list(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


if __name__ == "__main__":
    main()
