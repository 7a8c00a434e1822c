"""A recording mock engine for unit tests of your own program that uses these components.

`MockEngine` is the `pulumi.runtime.Mocks` this repository's own tests and stack checker use: it
answers what the components need (a RandomBytes `base64`, the `tencentcloud:User/getInfo:getInfo`
invoke's `appId`, the outputs the clouds compute) and records every resource with its inputs,
parent and dependencies, on Pulumi's public testing API only:

    engine = MockEngine("my-project", stack="test").install()
    args = {"region": "cn-hangzhou", "bucket_name": "acme-events"}
    target = engine.run(lambda: AlibabaOssTarget("t", args))
    assert engine.one("alicloud:oss/bucket:Bucket").inputs["bucket"] == "acme-events"
    assert engine.value(target.endpoint) == "https://oss-cn-hangzhou.aliyuncs.com"
"""

from .components.check.engine import (
    DEFAULT_APP_ID,
    UNKNOWN,
    MockEngine,
    Registration,
    is_secret,
    plain_strings,
    unwrap,
)

__all__ = [
    "DEFAULT_APP_ID",
    "UNKNOWN",
    "MockEngine",
    "Registration",
    "is_secret",
    "plain_strings",
    "unwrap",
]
