"""The shared receiver served for real on 127.0.0.1: modes, limits, health, metrics, draining."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests
from cloudevents.core.v1.event import CloudEvent

from runtime.receiver import (
    BackgroundServer,
    Delivery,
    Receiver,
    batch_response,
    binary_response,
)

CE_HEADERS = {
    "Content-Type": "application/json",
    "Ce-Specversion": "1.0",
    "Ce-Type": "any.event.type",
    "Ce-Source": "some.origin/intance",
    "Ce-Id": "536808d3-88be-4077-9d7a-a3f162705f79",
}


class Recorder:
    """Handler that records deliveries and answers with one response event per event."""

    def __init__(self, delay: float = 0.0) -> None:
        self.deliveries: list[Delivery] = []
        self.delay = delay
        self.release = threading.Event()
        self.release.set()

    async def __call__(self, delivery: Delivery):
        import asyncio

        self.deliveries.append(delivery)
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        if self.delay:
            await asyncio.sleep(self.delay)
        replies = [
            CloudEvent({"type": e.type + ".response", "source": "test", "id": "r-" + e.id})
            for e in delivery.events
        ]
        if delivery.mode == "batch":
            return batch_response(replies)
        return binary_response(replies[0])


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def server(recorder):
    receiver = Receiver(recorder, name="test_receiver", max_body_bytes=1024)
    with BackgroundServer(receiver, drain_timeout=5) as running:
        yield running


def test_binary_event_reaches_the_handler_with_raw_data(server, recorder):
    body = b'{"message":"Hello from TriggerMesh!"}'
    response = requests.post(server.url, data=body, headers=CE_HEADERS, timeout=5)
    assert response.status_code == 200
    assert response.headers["ce-type"] == "any.event.type.response"
    [delivery] = recorder.deliveries
    assert delivery.mode == "binary"
    assert delivery.events[0].data == body


def test_chunked_body_is_read_completely(server, recorder):
    parts = [b'{"message":', b'"chunked ', b'body"}']
    response = requests.post(server.url, data=iter(parts), headers=CE_HEADERS, timeout=5)
    assert response.status_code == 200
    assert recorder.deliveries[0].events[0].data == b"".join(parts)


def test_batch_answers_with_a_batch(server, recorder):
    events = [
        {"specversion": "1.0", "type": "t", "source": "s", "id": str(i), "data": {"i": i}}
        for i in range(3)
    ]
    response = requests.post(
        server.url,
        data=json.dumps(events),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/cloudevents-batch+json"
    assert [e["id"] for e in response.json()] == ["r-0", "r-1", "r-2"]


def test_invalid_event_is_400_with_a_json_reason_and_never_reaches_the_handler(server, recorder):
    headers = {k: v for k, v in CE_HEADERS.items() if k != "Ce-Id"}
    response = requests.post(server.url, data=b"{}", headers=headers, timeout=5)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid-event", "message": "missing required header ce-id"}
    assert recorder.deliveries == []


def test_plain_json_is_415(server, recorder):
    response = requests.post(server.url, json={"a": 1}, timeout=5)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported-media-type"
    assert recorder.deliveries == []


def test_declared_oversize_body_is_413_before_the_body_is_sent(server, recorder):
    # Send only the headers: the answer must come without the server waiting for the body.
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in CE_HEADERS.items())
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{head}Content-Length: 5000\r\n\r\n".encode())
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413")
    assert "body-too-large" in answer
    assert recorder.deliveries == []


def test_streamed_oversize_body_is_413_without_reading_the_rest(server, recorder):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in CE_HEADERS.items())
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\n{head}Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * 600
        for _ in range(2):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # No terminating chunk: the server must answer anyway, and close the connection.
        answer = b""
        while True:
            data = sock.recv(4096)
            if not data:
                break
            answer += data
    assert answer.startswith(b"HTTP/1.1 413")
    assert recorder.deliveries == []


def test_keep_alive_connection_serves_many_requests(server, recorder):
    with requests.Session() as session:
        for i in range(5):
            headers = {**CE_HEADERS, "Ce-Id": f"k-{i}"}
            assert session.post(server.url, data=b"{}", headers=headers, timeout=5).ok
    assert len(recorder.deliveries) == 5


def test_health_ready_and_metrics(server):
    assert requests.get(server.url + "healthz", timeout=5).json() == {"status": "ok"}
    assert requests.get(server.url + "readyz", timeout=5).status_code == 200
    requests.post(server.url, data=b"{}", headers=CE_HEADERS, timeout=5)
    requests.post(server.url, json={}, timeout=5)
    metrics = requests.get(server.url + "metrics", timeout=5)
    assert metrics.headers["Content-Type"].startswith("text/plain")
    text = metrics.text
    assert 'test_receiver_events_received_total{mode="binary"} 1.0' in text
    assert 'test_receiver_requests_rejected_total{reason="unsupported-media-type"} 1.0' in text
    assert 'test_receiver_requests_total{status="200"} 1.0' in text
    assert "test_receiver_requests_in_flight 0.0" in text
    assert "test_receiver_request_duration_seconds_count 2.0" in text


def test_handler_exception_is_500_without_details():
    async def broken(delivery):
        raise RuntimeError("secret detail")

    with BackgroundServer(Receiver(broken, name="broken", max_body_bytes=100)) as server:
        response = requests.post(server.url, data=b"{}", headers=CE_HEADERS, timeout=5)
    assert response.status_code == 500
    assert "secret" not in response.text


def test_draining_finishes_in_flight_requests_and_refuses_new_ones(recorder):
    recorder.release.clear()
    receiver = Receiver(recorder, name="drain", max_body_bytes=1024)
    server = BackgroundServer(receiver, drain_timeout=5).start()
    results = {}

    def slow_post():
        results["slow"] = requests.post(server.url, data=b"{}", headers=CE_HEADERS, timeout=10)

    keep_alive = requests.Session()
    assert keep_alive.get(server.url + "readyz", timeout=5).status_code == 200
    worker = threading.Thread(target=slow_post)
    worker.start()
    while not recorder.deliveries:
        time.sleep(0.01)
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    while not receiver.draining:
        time.sleep(0.01)
    # New connections are refused once draining started.
    with pytest.raises(requests.ConnectionError):
        for _ in range(50):
            requests.get(server.url + "readyz", timeout=1)
            time.sleep(0.02)
    recorder.release.set()
    worker.join(10)
    stopper.join(10)
    assert results["slow"].status_code == 200
    assert not stopper.is_alive()
    keep_alive.close()


def test_in_flight_is_bounded():
    active = 0
    peak = 0

    async def counting(delivery):
        import asyncio

        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return binary_response(CloudEvent({"type": "r", "source": "s"}))

    receiver = Receiver(counting, name="bounded", max_body_bytes=100, max_in_flight=3)
    with BackgroundServer(receiver) as server:
        threads = [
            threading.Thread(
                target=requests.post,
                args=(server.url,),
                kwargs={"data": b"{}", "headers": CE_HEADERS, "timeout": 10},
            )
            for _ in range(10)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert peak == 3


def test_readiness_and_new_events_answer_503_once_draining(recorder):
    import asyncio

    receiver = Receiver(recorder, name="ready", max_body_bytes=100, is_ready=lambda: True)
    assert asyncio.run(receiver._readyz(None)).status == 200
    receiver.start_draining()
    assert asyncio.run(receiver._readyz(None)).status == 503
    refused = asyncio.run(receiver._receive(None))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert recorder.deliveries == []


def test_readiness_follows_the_handlers_own_check(recorder):
    import asyncio

    ready = False
    receiver = Receiver(recorder, name="check", max_body_bytes=100, is_ready=lambda: ready)
    assert asyncio.run(receiver._readyz(None)).status == 503
    ready = True
    assert asyncio.run(receiver._readyz(None)).status == 200


def test_authenticate_hook_runs_on_the_raw_body_before_parsing(recorder):
    from runtime.receiver import Unauthorized

    seen = []

    def authenticate(request, body):
        seen.append(body)
        if request.headers.get("X-Token") != "good":
            raise Unauthorized("missing or bad X-Token")

    receiver = Receiver(recorder, name="auth", max_body_bytes=100, authenticate=authenticate)
    with BackgroundServer(receiver) as server:
        # Not even a CloudEvent: refused as unauthenticated, not as 415, and never parsed.
        refused = requests.post(server.url, data=b"junk", timeout=5)
        accepted = requests.post(
            server.url, data=b"{}", headers={**CE_HEADERS, "X-Token": "good"}, timeout=5
        )
    assert refused.status_code == 401
    assert refused.json() == {"error": "unauthorized", "message": "missing or bad X-Token"}
    assert accepted.status_code == 200
    assert seen == [b"junk", b"{}"]
    assert len(recorder.deliveries) == 1
