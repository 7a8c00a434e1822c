"""Benchmark: the OSS target's head start (upload while the body arrives) on a shaped link.

    sudo .venv/bin/python bench/head_start.py [--link-mbit 1000] [--rounds 5] [--events 10]
    .venv/bin/python bench/head_start.py --link-mbit 0     # loopback as is, no root needed

On loopback every hop is a memory copy, so the two hops the target makes (sender to target,
target to OSS) cost CPU, not time on a wire, and overlapping them changes little. On a network
each hop takes size / bandwidth. With `--link-mbit`, the loopback interface is shaped with an
HTB qdisc (`tc`, root): traffic to the targets' port and traffic to the emulator's port each get
their own class of that rate, as the two directions of a pod's full-duplex link would; all other
loopback traffic (answers, other processes) is left at 100 Gbit/s. The qdisc is removed at the
end, and the benchmark refuses to start if the loopback already has one.

Processes: the object-store emulator, the target with its default settings (head start on,
OSS_HEAD_START_BYTES 1 MiB), the same target with OSS_HEAD_START_BYTES=0 (off), and plain oss2
(one `put_object` at a time, one hop: the floor a direct client sets). Per body size, `--rounds`
rounds each send `--events` events one at a time to each, in an order that rotates every round;
the figure is the median over rounds of each round's median latency, with min-max, and the
ratios are medians of the per-round ratios (above 1: the head start is faster).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.oss_target import (  # noqa: E402
    AK,
    BUCKET,
    MIB,
    SK,
    free_port,
    label,
    reset_emulator,
    start_emulator,
    start_target,
)

SIZES = (MIB, 8 * MIB)
HEAD_START_OFF = {"OSS_HEAD_START_BYTES": "0"}


class ShapedLoopback:
    """An HTB root qdisc on `lo`: `rate` for each of two ports' inbound traffic, else 100 Gbit."""

    def __init__(self, mbit: int, target_ports: list[int], oss_port: int) -> None:
        self.mbit = mbit
        self.target_ports = target_ports
        self.oss_port = oss_port

    def __enter__(self) -> ShapedLoopback:
        shown = _tc("qdisc", "show", "dev", "lo")
        if "htb" in shown or "tbf" in shown or "netem" in shown:
            raise SystemExit(f"the loopback already has a qdisc; not touching it:\n{shown}")
        rate, burst = f"{self.mbit}mbit", "256k"
        _tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "30",
            "r2q", "1000")  # fmt: skip
        try:
            for classid, speed in (("1:10", rate), ("1:20", rate), ("1:30", "100gbit")):
                _tc("class", "add", "dev", "lo", "parent", "1:", "classid", classid, "htb",
                    "rate", speed, "ceil", speed, "burst", burst, "cburst", burst)  # fmt: skip
            ports = [(port, "1:10") for port in self.target_ports] + [(self.oss_port, "1:20")]
            for port, flow in ports:
                _tc("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1",
                    "u32", "match", "ip", "dport", str(port), "0xffff", "flowid", flow)  # fmt: skip
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        subprocess.run(["tc", "qdisc", "del", "dev", "lo", "root"], capture_output=True)


def _tc(*args: str) -> str:
    try:
        done = subprocess.run(["tc", *args], capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise SystemExit("--link-mbit needs tc (iproute2); --link-mbit 0 runs without") from None
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"tc {' '.join(args)} failed ({error.stderr.strip()}): shaping needs root and the "
            "HTB qdisc; --link-mbit 0 runs without"
        ) from None
    return done.stdout


async def target_latencies(url: str, body: bytes, count: int, prefix: str) -> list[float]:
    import aiohttp

    latencies = []
    async with aiohttp.ClientSession() as session:
        for index in range(count):
            headers = {
                "Content-Type": "application/octet-stream",
                "Ce-Specversion": "1.0",
                "Ce-Type": "bench.event",
                "Ce-Source": "bench",
                "Ce-Id": f"{prefix}-{index}",
            }
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
            if response.status != 200:
                raise SystemExit(f"target answered {response.status}")
            latencies.append(time.perf_counter() - started)
    return latencies


def plain_latencies(endpoint: str, body: bytes, count: int, prefix: str) -> list[float]:
    import oss2

    bucket = oss2.Bucket(oss2.Auth(AK, SK), endpoint, BUCKET)
    latencies = []
    for index in range(count):
        started = time.perf_counter()
        bucket.put_object(f"{prefix}-{index}", body)
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--link-mbit", type=int, default=1000, help="0: loopback as is")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=10, help="per round, size and path")
    args = parser.parse_args()
    ports = {"on": free_port(), "off": free_port(), "oss": free_port()}
    emulator, endpoint = start_emulator(ports["oss"])
    processes = [emulator]
    try:
        on = start_target(endpoint, port=ports["on"])
        off = start_target(endpoint, HEAD_START_OFF, port=ports["off"])
        processes += [on[0], off[0]]
        urls = {"head start": on[1], "no head start": off[1]}
        shaping = (
            ShapedLoopback(args.link_mbit, [ports["on"], ports["off"]], ports["oss"])
            if args.link_mbit
            else contextlib.nullcontext()
        )
        results = {}
        started = time.monotonic()
        with shaping:
            for size in SIZES:
                body = os.urandom(size)
                medians: dict[str, list[float]] = {name: [] for name in (*urls, "plain oss2")}
                order = list(medians)
                for round_index in range(max(1, args.rounds)):
                    for name in order[round_index % 3 :] + order[: round_index % 3]:
                        prefix = f"{name[:2]}-{size}-{round_index}"
                        if name == "plain oss2":
                            latencies = plain_latencies(endpoint, body, args.events, prefix)
                        else:
                            latencies = asyncio.run(
                                target_latencies(urls[name], body, args.events, prefix)
                            )
                        medians[name].append(statistics.median(latencies) * 1000)
                    reset_emulator(endpoint)
                results[size] = medians
    finally:
        for process in processes:
            process.terminate()
            process.wait(30)

    link = f"{args.link_mbit} Mbit/s per hop (HTB on lo)" if args.link_mbit else "loopback as is"
    print(
        f"{link}; one event at a time; {args.rounds} rounds x {args.events} events per path and "
        f"size; median over rounds of each round's median latency (min-max); "
        f"{time.monotonic() - started:.0f} s\n"
    )
    print("size   | head start          | no head start       | plain oss2 (one hop) | "
          "no head start / head start | plain / head start")  # fmt: skip
    for size, medians in results.items():
        cells = []
        for name in ("head start", "no head start", "plain oss2"):
            values = medians[name]
            cells.append(
                f"{statistics.median(values):7.1f} ms ({min(values):.0f}-{max(values):.0f})"
            )
        ratios = [
            statistics.median(
                other / ahead
                for other, ahead in zip(medians[name], medians["head start"], strict=True)
            )
            for name in ("no head start", "plain oss2")
        ]
        print(
            f"{label(size):>6} | {cells[0]:<19} | {cells[1]:<19} | {cells[2]:<20} | "
            f"{ratios[0]:26.2f} | {ratios[1]:.2f}"
        )


if __name__ == "__main__":
    main()
