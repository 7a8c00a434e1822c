"""The mock engine installs in a process that has already run asyncio code (a user's test suite
that called asyncio.run first): Pulumi's mocks need a current event loop, which asyncio.run
leaves unset when it returns."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import asyncio
asyncio.run(asyncio.sleep(0))
from components import AlibabaOssTarget
from components.check.engine import MockEngine
engine = MockEngine("after-asyncio-run", stack="test").install()
engine.run(lambda: AlibabaOssTarget("t", {"region": "cn-hangzhou", "bucket_name": "acme-z"}))
print(engine.one("alicloud:oss/bucket:Bucket").inputs["bucket"])
"""


def test_the_mock_engine_installs_after_asyncio_run():
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("acme-z")
