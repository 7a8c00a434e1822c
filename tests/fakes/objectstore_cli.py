"""`python -m tests.fakes.objectstore`: the emulator in its own process, for benches and the demo.

Prints `endpoint=http://127.0.0.1:PORT` as its first line (flushed), then serves until SIGTERM or
SIGINT. Other processes inspect it through the admin routes (see objectstore_admin.py).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from tests.fakes.objectstore import ObjectStoreEmulator


def _credential(text: str) -> tuple[str, str]:
    ak, sep, sk = text.partition(":")
    if not sep or not ak or not sk:
        raise argparse.ArgumentTypeError("expected ACCESS_KEY_ID:SECRET")
    return ak, sk


def _sts(text: str) -> tuple[str, str]:
    ak, sep, token = text.partition(":")
    if not sep or not ak or not token:
        raise argparse.ArgumentTypeError("expected ACCESS_KEY_ID:TOKEN")
    return ak, token


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.objectstore",
        description="Local OSS/COS emulator that verifies signatures (test use only).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--bucket", action="append", default=[], help="repeatable")
    parser.add_argument(
        "--credentials", action="append", type=_credential, default=[], metavar="AK:SK"
    )
    parser.add_argument(
        "--security-token", action="append", type=_sts, default=[], metavar="AK:TOKEN"
    )
    parser.add_argument("--fail-probability", type=float, default=0.0)
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument(
        "--fail-code", default=None, help="SlowDown for 503 (default), else InternalError"
    )
    parser.add_argument("--drop-probability", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    parser.add_argument("--seed", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    credentials = dict(args.credentials) if args.credentials else None
    store = ObjectStoreEmulator(
        credentials=credentials,
        security_tokens=dict(args.security_token),
        buckets=args.bucket or ["test-bucket"],
        host=args.host,
        port=args.port,
    )
    if args.fail_probability:
        code = args.fail_code or ("SlowDown" if args.fail_status == 503 else "InternalError")
        store.fail_randomly(args.fail_probability, args.fail_status, code, args.seed)
    if args.drop_probability:
        store.drop_randomly(args.drop_probability, args.seed)
    store.set_latency(args.latency)

    stopping = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    store.start()
    print(f"endpoint={store.endpoint}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        store.stop()
    stats = store.stats
    print(f"stopped requests={stats.requests} stored={stats.stored}", file=sys.stderr, flush=True)
    return 0
