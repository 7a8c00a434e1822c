"""Local OSS/COS object-store emulator that verifies request signatures like the real services.

    with ObjectStoreEmulator(credentials={"test-ak": "test-sk"}, buckets=["test-bucket"]) as store:
        bucket = oss2.Bucket(oss2.Auth("test-ak", "test-sk"), store.endpoint, "test-bucket")
        bucket.put_object("k", b"v")
        assert store.get("test-bucket", "k").body == b"v"

OSS clients use path style (`/bucket/key`, which oss2 picks for an IP endpoint); COS clients use the
qcloud_cos IP+Port mode (`Host: <bucket>.cos.<region>.myqcloud.com`). See tests/README.md.
Run `python -m tests.fakes.objectstore --help` for the separate-process mode.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping

from tests.fakes.objectstore_http import EmulatorHTTPServer
from tests.fakes.objectstore_state import (
    Fault,
    FaultPlan,
    ObjectTable,
    Stats,
    StatsCounter,
    StoredObject,
    crc64_ecma,
)
from tests.fakes.objectstore_sts import IssuedCredentials, OidcTrust, StsService

__all__ = ["IssuedCredentials", "ObjectStoreEmulator", "Stats", "StoredObject", "crc64_ecma"]

DEFAULT_CREDENTIALS = {"test-ak": "test-sk"}
DEFAULT_BUCKETS = ("test-bucket",)


class ObjectStoreEmulator:
    def __init__(
        self,
        credentials: Mapping[str, str] | None = None,
        security_tokens: Mapping[str, str] | None = None,
        buckets: Iterable[str] = DEFAULT_BUCKETS,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`credentials` maps access key id -> secret; `security_tokens` maps the access key ids
        that are STS keys to the token they must send. `clock` is the server's idea of "now"
        (tests shift it to provoke RequestTimeTooSkewed)."""
        self.credentials = dict(DEFAULT_CREDENTIALS if credentials is None else credentials)
        self.security_tokens = dict(security_tokens or {})
        unknown = set(self.security_tokens) - set(self.credentials)
        if unknown:
            raise ValueError(f"security_tokens for keys without a secret: {sorted(unknown)}")
        self.clock = clock
        # Shared with the HTTP handler threads; tests use the methods below instead.
        self.table = ObjectTable()
        self.fault_plan = FaultPlan()
        self.counters = StatsCounter()
        # STS (AssumeRoleWithOIDC) on the same port: POST/GET `/?Action=AssumeRoleWithOIDC&...`.
        self.sts = StsService(lambda: self.clock())
        for bucket in buckets:
            self.create_bucket(bucket)
        self._address = (host, port)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ObjectStoreEmulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        self._server = EmulatorHTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"objectstore-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ObjectStoreEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return self._server.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    # ------------------------------------------------------------------ objects

    def create_bucket(self, bucket: str) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid bucket name {bucket!r}")
        self.table.create_bucket(bucket)

    def buckets(self) -> list[str]:
        return self.table.buckets()

    def get(self, bucket: str, key: str) -> StoredObject | None:
        return self.table.get(bucket, key)

    def keys(self, bucket: str) -> list[str]:
        return self.table.keys(bucket)

    def reset(self) -> None:
        """Forget every object (buckets stay), every fault, and every counter."""
        for bucket in self.table.buckets():
            for key in self.table.keys(bucket):
                self.table.delete(bucket, key)
        self.clear_faults()
        self.counters.reset()

    # ------------------------------------------------------------------ STS

    @property
    def sts_endpoint(self) -> str:
        """What ALIBABA_CLOUD_STS_ENDPOINT should say to reach this emulator's STS."""
        return self.endpoint

    def trust_oidc(
        self, role_arn: str, provider_arn: str, token: str, max_session_seconds: int = 3600
    ) -> None:
        """Let `AssumeRoleWithOIDC` with this role, provider and token succeed."""
        self.sts.trusts.append(OidcTrust(role_arn, provider_arn, token, max_session_seconds))

    def issue_sts(self, seconds: float = 3600) -> IssuedCredentials:
        """STS credentials that OSS requests accept until `seconds` from now (emulator clock)."""
        return self.sts.issue(self, seconds)

    def revoke(self, access_key_id: str) -> None:
        """Forget a key: later requests signed with it get 403 InvalidAccessKeyId."""
        self.credentials.pop(access_key_id, None)
        self.security_tokens.pop(access_key_id, None)

    def fail_sts_next(
        self, n: int = 1, status: int = 503, code: str = "ServiceUnavailable"
    ) -> None:
        self.sts.fail_next.extend([(int(status), code)] * int(n))

    # ------------------------------------------------------------------ faults

    def fail_next(self, n: int = 1, status: int = 503, code: str = "SlowDown") -> None:
        """Answer the next `n` object requests with `status`/`code` without acting on them."""
        self.fault_plan.queue(Fault("fail", int(status), code), int(n))

    def fail_randomly(
        self, probability: float, status: int = 503, code: str = "SlowDown", seed: int | None = None
    ) -> None:
        self.fault_plan.fail_randomly(float(probability), int(status), code, seed)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection of the next `n` object requests (after reading them) unanswered."""
        self.fault_plan.queue(Fault("drop"), int(n))

    def drop_randomly(self, probability: float, seed: int | None = None) -> None:
        self.fault_plan.drop_randomly(float(probability), seed)

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.fault_plan.latency = float(seconds)

    def corrupt_crc_next(self, n: int = 1) -> None:
        """Store the next `n` PUTs but answer a wrong CRC-64 (proves the client checks it)."""
        self.fault_plan.corrupt_crc(int(n))

    def clear_faults(self) -> None:
        self.fault_plan.clear()

    @property
    def stats(self) -> Stats:
        return self.counters.snapshot()


if __name__ == "__main__":
    from tests.fakes.objectstore_cli import main

    raise SystemExit(main())
