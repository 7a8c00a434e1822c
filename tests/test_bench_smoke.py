"""Every benchmark bench/README.md documents still runs and prints its figures, here in a small
configuration (the full runs take minutes and are not part of the test suite; chain.py has its own
test in tests/e2e/test_bench_chain.py)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH_README = (ROOT / "bench" / "README.md").read_text()

SMALL_RUNS = {
    "program.py": (["--pairs", "1", "2", "--runs", "1"], r"ratio"),
    "cos_source.py": (["--records", "20", "--runs", "1"], r"\d+(\.\d+)?x \(goal >= 5x"),
    "oss_target.py": (["--quick"], r"ratio|target/plain"),
    "relay.py": (
        ["--events", "200", "--runs", "1", "--claimers", "10", "--probes", "2"],
        r"ratio relay / baseline .*\n(.*\n)*.*peak(.*\n)*.*KiB claims: median",
    ),
    "limits.py": (["--events", "2", "--runs", "1"], r"peak RSS median .* MiB"),
    "lake.py": (["--quick"], r"OSS PUTs per 1,000 events(.*\n)*PUTs saved"),
    # Unshaped loopback: shaping needs root and tc, which the suite does not assume.
    "head_start.py": (
        ["--link-mbit", "0", "--rounds", "1", "--events", "2"],
        r"loopback as is(.*\n)*\s+8 MiB \|.*\|\s+\d+\.\d\d \| \d+\.\d\d",
    ),
}


def test_every_documented_benchmark_is_covered():
    documented = set(re.findall(r"^\.venv/bin/python bench/(\w+\.py)", BENCH_README, re.M))
    assert documented == {*SMALL_RUNS, "chain.py"}


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(SMALL_RUNS))
def test_benchmark_runs_small_and_prints_its_figures(script):
    args, expected = SMALL_RUNS[script]
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(expected, result.stdout), result.stdout[-2000:]
