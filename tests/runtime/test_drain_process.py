"""SIGTERM while a request is stuck on a slow upstream: the OSS target (its uploads run in threads)
must still exit within DRAIN_TIMEOUT_SECONDS + a few seconds, answering what it cut short 503, or
Kubernetes SIGKILLs it at the end of the grace period (issue 11: 33.8 s against 30 s)."""

from __future__ import annotations

import http.client
import threading
import time

from tests.e2e.chain import start_emulator, start_oss_target


def test_oss_target_exits_within_its_drain_timeout_with_an_upload_stuck(tmp_path):
    emulator = start_emulator(tmp_path, "--latency", "30")
    target = start_oss_target(
        tmp_path,
        emulator,
        DRAIN_TIMEOUT_SECONDS="1",
        OSS_TIMEOUT_SECONDS="60",
        OSS_RETRY_BUDGET_SECONDS="60",
    )
    answers: list[int] = []
    try:

        def send() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=60)
            headers = {
                "Content-Type": "application/json",
                "ce-specversion": "1.0",
                "ce-id": "stuck-1",
                "ce-source": "test",
                "ce-type": "t",
            }
            conn.request("POST", "/", body=b"{}", headers=headers)
            answers.append(conn.getresponse().status)

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(1.5)  # the upload is now waiting on the emulator (30 s)
        assert answers == []
        started = time.monotonic()
        code = target.stop(timeout=30)
        took = time.monotonic() - started
        sender.join(10)
    finally:
        target.stop(5)
        emulator.stop(5)
    assert code == 0
    assert took < 1 + 3, f"took {took:.1f} s"
    assert answers == [503]
