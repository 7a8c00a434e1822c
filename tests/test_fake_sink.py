"""The CloudEvents sink fake records what real senders send and fails exactly as told."""

import http.client
import json
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest
from cloudevents.core.bindings.http import to_binary_event, to_structured_event
from cloudevents.core.v1.event import CloudEvent

from tests.fakes.sink import CloudEventsSink


def _post(url: str, headers: dict, body: bytes, path: str = "/") -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def _event(event_id: str = "e-1", **extra) -> CloudEvent:
    attributes = {
        "id": event_id,
        "source": "tests/sink",
        "type": "com.example.test",
        "specversion": "1.0",
        "time": "2018-12-19T07:49:30Z",
        "subject": "dir/a b%.txt",
        "datacontenttype": "application/json",
        **extra,
    }
    from dateutil.parser import isoparse

    attributes["time"] = isoparse(attributes["time"])
    return CloudEvent(attributes, {"hello": "world"})


@pytest.fixture
def sink():
    with CloudEventsSink() as running:
        yield running


def test_binary_event_is_recorded_with_wire_attributes(sink):
    message = to_binary_event(_event(cosbucket="b-1250000000"))
    assert _post(sink.url, message.headers, message.body, path="/gateway/bus") == 200
    [event] = sink.wait_for(1)
    assert event.mode == "binary"
    assert event.path == "/gateway/bus"
    assert event.attributes == {
        "id": "e-1",
        "source": "tests/sink",
        "type": "com.example.test",
        "specversion": "1.0",
        "time": "2018-12-19T07:49:30Z",
        "subject": "dir/a b%.txt",
        "datacontenttype": "application/json",
        "cosbucket": "b-1250000000",
    }
    assert event.json() == {"hello": "world"}
    assert event.data == message.body
    assert event.headers["ce-subject"] == "dir/a%20b%25.txt"


def test_structured_event_is_recorded(sink):
    message = to_structured_event(_event("e-2"))
    assert _post(sink.url, message.headers, message.body) == 200
    [event] = sink.wait_for(1)
    assert event.mode == "structured"
    assert event.attributes["id"] == "e-2"
    assert event.attributes["time"] == "2018-12-19T07:49:30Z"
    assert event.json() == {"hello": "world"}


def test_batch_is_split_into_events(sink):
    elements = [json.loads(to_structured_event(_event(f"b-{i}")).body) for i in range(3)]
    elements.append({**elements[0], "id": "b-bin", "data_base64": "AAE=", "data": None})
    del elements[-1]["data"]
    elements[-1]["datacontenttype"] = "application/octet-stream"
    body = json.dumps(elements).encode()
    status = _post(sink.url, {"Content-Type": "application/cloudevents-batch+json"}, body)
    assert status == 200
    events = sink.wait_for(4)
    assert [e.id for e in events] == ["b-0", "b-1", "b-2", "b-bin"]
    assert {e.mode for e in events} == {"batch"}
    assert events[3].data == b"\x00\x01"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"ce-source": "s", "ce-type": "t", "ce-specversion": "1.0"}, b"{}"),  # no id
        (
            {
                "ce-id": "1",
                "ce-source": "s",
                "ce-type": "t",
                "ce-specversion": "1.0",
                "ce-time": "x",
            },
            b"",
        ),
        ({"Content-Type": "application/json"}, b'{"id": "1"}'),  # plain JSON is not an event
        ({"Content-Type": "application/cloudevents+json"}, b"{not json"),
        ({"Content-Type": "application/cloudevents-batch+json"}, b'{"id": "1"}'),
    ],
)
def test_invalid_requests_get_400_and_record_no_event(sink, headers, body):
    assert _post(sink.url, headers, body) == 400
    assert sink.events == []
    assert [r.status for r in sink.requests] == [400]


def test_fail_next_answers_then_recovers(sink):
    message = to_binary_event(_event())
    sink.fail_next(2, status=500)
    statuses = [_post(sink.url, message.headers, message.body) for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert len(sink.events) == 1
    assert [r.status for r in sink.requests] == [500, 500, 200]


def test_fail_next_can_send_retry_after(sink):
    message = to_binary_event(_event())
    sink.fail_next(1, status=503, retry_after=7)
    parts = urlsplit(sink.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("POST", "/", body=message.body, headers=message.headers)
    response = conn.getresponse()
    assert (response.status, response.getheader("Retry-After")) == (503, "7")
    conn.close()


def test_respond_with_applies_until_reset(sink):
    message = to_binary_event(_event())
    sink.respond_with(429)
    assert _post(sink.url, message.headers, message.body) == 429
    assert _post(sink.url, message.headers, message.body) == 429
    assert sink.events == []
    sink.respond_with(202)
    assert _post(sink.url, message.headers, message.body) == 202
    assert len(sink.events) == 1
    sink.reset()
    assert sink.events == [] and sink.requests == []
    assert _post(sink.url, message.headers, message.body) == 200


def test_fail_when_targets_matching_requests(sink):
    sink.fail_when(lambda request: request.headers.get("ce-id") == "bad", status=503)
    good, bad = to_binary_event(_event("good")), to_binary_event(_event("bad"))
    assert _post(sink.url, bad.headers, bad.body) == 503
    assert _post(sink.url, good.headers, good.body) == 200
    assert [e.id for e in sink.events] == ["good"]


def test_latency_delays_every_answer(sink):
    message = to_binary_event(_event())
    sink.set_latency(0.2)
    started = time.monotonic()
    _post(sink.url, message.headers, message.body)
    assert time.monotonic() - started >= 0.2


def test_wait_for_times_out_with_what_it_saw(sink):
    with pytest.raises(TimeoutError, match="got 0 event"):
        sink.wait_for(1, timeout=0.1)


def test_chunked_body_is_read(sink):
    message = to_binary_event(_event("chunked"))
    parts = urlsplit(sink.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request(
        "POST", "/", body=iter([message.body[:5], message.body[5:]]), headers=message.headers
    )
    assert conn.getresponse().status == 200
    conn.close()
    assert sink.wait_for(1)[0].data == message.body


def test_cli_runs_in_its_own_process():
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.sink", "--port", "0", "--latency", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline().strip()
        assert first.startswith("url=http://127.0.0.1:")
        url = first.removeprefix("url=")
        message = to_binary_event(_event())
        assert _post(url, message.headers, message.body) == 200
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        conn.request("GET", "/_sink/stats")
        assert json.loads(conn.getresponse().read()) == {"events": 1, "requests": 1}
        conn.request("POST", "/_sink/clear", body=b"")
        assert conn.getresponse().read() == b"{}"
        conn.request("GET", "/_sink/stats")
        assert json.loads(conn.getresponse().read()) == {"events": 0, "requests": 0}
        conn.close()
        started = time.monotonic()
        assert _post(url, message.headers, message.body) == 200
        assert time.monotonic() - started >= 0.05  # --latency survives a clear
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert out.strip().splitlines()[-1] == "events=1 requests=1"
