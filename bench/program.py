"""Time to run the whole Pulumi program under the mock engine for 1, 10 and 50 connector pairs.

Each pair is what one stack deploys (an AlibabaOssTarget and a TencentCosSource with a relay, with
their providers and namespace), declared through the program's own `deploy()`. Preview mode, as
`python -m components.check` runs it. The baseline is the one-pair run of the same process: growth
is linear when the per-pair cost at 10 and 50 pairs stays near it.

    .venv/bin/python bench/program.py [--pairs 1 10 50] [--runs 3]
"""

import argparse
import runpy
import statistics
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from components.check.engine import MockEngine  # noqa: E402
from components.stack_config import parse_stack_config  # noqa: E402


def pair_config(i: int):
    return parse_stack_config(
        {
            "kubernetes": {"namespace": f"ce-{i}", "createNamespace": True},
            "ossTarget": {
                "region": "cn-hangzhou",
                "bucketName": f"acme-events-{i}",
                "expirationDays": 30,
                "runtime": {"minReplicas": 2, "maxReplicas": 4},
            },
            "cosSource": {
                "region": "ap-guangzhou",
                "bucketName": f"uploads-{i}",
                "appId": "1250000000",
                "events": ["cos:ObjectCreated:*", "cos:ObjectRemove:*"],
                "relay": {"sinkUrl": f"http://broker.ce-{i}.svc.cluster.local/"},
            },
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    engine = MockEngine("cloudevents-connectors", stack="bench", preview=True).install()
    deploy = runpy.run_path(str(REPO_ROOT / "__main__.py"), run_name="program")["deploy"]
    configs = {n: [pair_config(i) for i in range(n)] for n in args.pairs}

    def run(n: int) -> tuple[float, int]:
        engine.reset()
        start = time.perf_counter()
        engine.run(lambda: [deploy(c, prefix=f"p{i}-") for i, c in enumerate(configs[n])])
        return time.perf_counter() - start, len(engine.resources)

    run(min(args.pairs))  # warm-up: imports, first package build
    results = {}
    for n in args.pairs:
        timings = []
        for _ in range(args.runs):
            seconds, resources = run(n)
            timings.append(seconds)
        results[n] = (statistics.median(timings), min(timings), resources)

    base_n = min(args.pairs)
    base_per_pair = results[base_n][0] / base_n
    header = ("pairs", "resources", "median s", "best s", "per pair ms")
    print("  ".join(f"{h:>{w}}" for h, w in zip(header, (5, 9, 9, 7, 11), strict=True)), " ratio")
    for n, (median, best, resources) in results.items():
        per_pair = median / n
        print(
            f"{n:>5}  {resources:>9}  {median:>9.3f}  {best:>7.3f}  {per_pair * 1000:>11.1f}"
            f"  {per_pair / base_per_pair:.2f}x"
        )
    print(f"(ratio = per-pair cost against the {base_n}-pair run of this process; 1.00x = linear)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
