"""The relay: Standard Webhooks verification, forwarding in binary mode, honest acknowledgements."""

import base64
import http.client
import json
import pathlib
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from standardwebhooks import Webhook

from runtime.receiver import BackgroundServer, EnvReader, SettingError
from runtime.relay.app import build_relay
from runtime.relay.settings import read_settings
from runtime.tencent_cos_source import cos_delivery
from tests.fakes.sink import CloudEventsSink

SECRET = "whsec_" + base64.b64encode(b"relay-secret-key-0123456789abcd!").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-key-0123456789ab!").decode()
BINARY_HEADERS = {
    "ce-id": "evt-1",
    "ce-source": "cos-source-fn",
    "ce-type": "tencent-cloud-cos-event",
    "ce-specversion": "1.0",
    "ce-time": "2018-12-19T07:49:30.5Z",
    "ce-subject": "dir/a%20b.txt",
    "ce-cosbucket": "testpic-1253970026",
    "Content-Type": "application/json",
}
BODY = b'{"Records":[{"cos":{},"event":{}}]}'


def signed(
    body: bytes, headers: dict, secret: str = SECRET, msg_id: str = "msg-1", at=None
) -> dict:
    timestamp = at or datetime.now(timezone.utc)
    signature = Webhook(secret).sign(msg_id, timestamp, body.decode())
    return {
        **headers,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


def post(url: str, headers: dict, body: bytes, method: str = "POST"):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, parts.path or "/", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def sink():
    with CloudEventsSink() as running:
        yield running


def start_relay(sink_url: str, **environ):
    settings = read_settings(
        EnvReader(
            {
                "K_SINK": sink_url,
                "RELAY_SIGNING_SECRET": SECRET,
                "DELIVERY_BACKOFF_SECONDS": "0.01",
                "DELIVERY_BACKOFF_MAX_SECONDS": "0.05",
                "DELIVERY_RETRY_BUDGET_SECONDS": "0.5",
                "RETRY_AFTER_SECONDS": "7",
                **environ,
            }
        )
    )
    receiver, forwarder = build_relay(settings)
    return BackgroundServer(receiver, on_shutdown=[forwarder.close], drain_timeout=1)


@pytest.fixture
def relay(sink):
    with start_relay(sink.url) as server:
        yield server


def test_signed_binary_event_is_forwarded_unchanged(sink, relay):
    status, _, _ = post(relay.url, signed(BODY, BINARY_HEADERS), BODY)
    assert status == 202
    [event] = sink.events  # already there: no 2xx before the sink accepted
    assert event.mode == "binary"
    assert event.data == BODY
    for name, value in BINARY_HEADERS.items():
        assert event.headers[name.lower()] == value
    assert event.attributes["time"] == "2018-12-19T07:49:30.5Z"
    assert not any(name.startswith("webhook-") for name in event.headers)


def test_signed_event_with_binary_data_is_forwarded_byte_exact(sink, relay):
    # Signed over the raw bytes, as the SCF function signs; not UTF-8, so the reference library
    # could not have verified it.
    body = bytes(range(256)) * 4
    headers = {**BINARY_HEADERS, "Content-Type": "application/octet-stream"}
    timestamp = int(time.time())
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    headers |= {
        "webhook-id": "msg-bin",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": cos_delivery.sign(key, "msg-bin", timestamp, body),
    }
    status, _, _ = post(relay.url, headers, body)
    assert status == 202
    [event] = sink.events
    assert event.data == body
    assert event.headers["content-type"] == "application/octet-stream"


def test_structured_and_batch_are_forwarded_one_binary_event_each(sink, relay):
    element = {
        "id": "s-1",
        "source": "src",
        "type": "t",
        "specversion": "1.0",
        "subject": "a b",
        "cosregion": "cd",
        "datacontenttype": "application/json",
        "data": {"k": "v"},
    }
    structured = json.dumps(element).encode()
    headers = {"Content-Type": "application/cloudevents+json"}
    assert post(relay.url, signed(structured, headers), structured)[0] == 202
    batch = json.dumps(
        [dict(element, id="b-1"), dict(element, id="b-2", data_base64="AAE=", data=None)]
    ).encode()
    batch_headers = {"Content-Type": "application/cloudevents-batch+json"}
    assert post(relay.url, signed(batch, batch_headers), batch)[0] == 202
    events = sink.events
    assert events[0].id == "s-1"
    assert sorted(e.id for e in events[1:]) == ["b-1", "b-2"]
    assert {e.mode for e in events} == {"binary"}
    first = events[0]
    assert first.attributes["subject"] == "a b" and first.attributes["cosregion"] == "cd"
    assert "time" not in first.attributes  # nothing invented on the way
    assert first.json() == {"k": "v"}
    assert next(e for e in events if e.id == "b-2").data == b"\x00\x01"


def test_an_event_without_datacontenttype_gets_none_on_the_way(sink, relay):
    structured = json.dumps({"id": "n", "source": "s", "type": "t", "specversion": "1.0"}).encode()
    headers = {"Content-Type": "application/cloudevents+json"}
    assert post(relay.url, signed(structured, headers), structured)[0] == 202
    binary = {"ce-id": "b", "ce-source": "s", "ce-type": "t", "ce-specversion": "1.0"}
    assert post(relay.url, signed(b"", binary), b"")[0] == 202
    for event in sink.events:
        assert "content-type" not in event.headers
        assert "datacontenttype" not in event.attributes
        assert event.data == b""


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda: BINARY_HEADERS, id="unsigned"),
        pytest.param(lambda: signed(BODY, BINARY_HEADERS, secret=OTHER_SECRET), id="wrong-secret"),
        pytest.param(lambda: signed(b'{"other":1}', BINARY_HEADERS), id="other-body"),
        pytest.param(
            lambda: signed(
                BODY, BINARY_HEADERS, at=datetime.now(timezone.utc) - timedelta(minutes=6)
            ),
            id="replayed-old-timestamp",
        ),
        pytest.param(
            lambda: signed(
                BODY, BINARY_HEADERS, at=datetime.now(timezone.utc) + timedelta(minutes=6)
            ),
            id="future-timestamp",
        ),
        pytest.param(
            lambda: {**signed(BODY, BINARY_HEADERS), "webhook-signature": "garbage"}, id="malformed"
        ),
        pytest.param(
            lambda: {**signed(BODY, BINARY_HEADERS), "webhook-id": "msg-2"}, id="other-id"
        ),
    ],
)
def test_bad_or_missing_signature_is_401_and_nothing_forwarded(sink, relay, make_headers):
    # Signed when the test runs: timestamps made at collection could drift into the window.
    status, _, body = post(relay.url, make_headers(), BODY)
    assert status == 401
    assert json.loads(body)["error"] == "unauthorized"
    assert sink.requests == []


def test_signature_is_checked_before_parsing(sink, relay):
    invalid = {k: v for k, v in BINARY_HEADERS.items() if k != "ce-id"}
    assert post(relay.url, invalid, BODY)[0] == 401  # unsigned: not even parsed
    status, _, body = post(relay.url, signed(BODY, invalid), BODY)
    assert status == 400 and json.loads(body)["error"] == "invalid-event"
    plain = {"Content-Type": "application/json"}
    assert post(relay.url, signed(BODY, plain), BODY)[0] == 415
    assert sink.requests == []


def test_size_limit_comes_before_the_signature(sink):
    with start_relay(sink.url, MAX_BODY_BYTES="10") as relay:
        assert post(relay.url, BINARY_HEADERS, BODY)[0] == 413


def test_sink_down_answers_503_with_retry_after_and_never_2xx(sink, relay):
    sink.respond_with(503)
    status, headers, body = post(relay.url, signed(BODY, BINARY_HEADERS), BODY)
    assert status == 503
    assert headers["Retry-After"] == "7"
    assert json.loads(body)["failed"] == [{"id": "evt-1", "status": 503}]
    assert {r.status for r in sink.requests} == {503}
    sink.respond_with(None)
    assert post(relay.url, signed(BODY, BINARY_HEADERS), BODY)[0] == 202
    assert [e.id for e in sink.events] == ["evt-1"]


def test_unreachable_sink_is_503(sink):
    with start_relay("http://127.0.0.1:9/", DELIVERY_RETRY_BUDGET_SECONDS="0.2") as relay:
        status, headers, _ = post(relay.url, signed(BODY, BINARY_HEADERS), BODY)
    assert status == 503 and "Retry-After" in headers


def test_transient_sink_failures_are_retried(sink, relay):
    sink.fail_next(2, status=502)
    assert post(relay.url, signed(BODY, BINARY_HEADERS), BODY)[0] == 202
    assert [r.status for r in sink.requests] == [502, 502, 200]
    assert len(sink.events) == 1


def test_a_batch_is_acknowledged_only_if_every_event_was_accepted(sink, relay):
    elements = [
        {"id": f"b-{i}", "source": "s", "type": "t", "specversion": "1.0", "data": i}
        for i in range(3)
    ]
    batch = json.dumps(elements).encode()
    headers = {"Content-Type": "application/cloudevents-batch+json"}
    sink.fail_when(lambda request: request.headers.get("ce-id") == "b-1")
    status, _, body = post(relay.url, signed(batch, headers), batch)
    assert status == 503
    assert json.loads(body)["failed"] == [{"id": "b-1", "status": 503}]
    assert sorted(e.id for e in sink.events) == ["b-0", "b-2"]


def test_sink_refusal_is_502_without_retries(sink, relay):
    sink.respond_with(400)
    status, _, body = post(relay.url, signed(BODY, BINARY_HEADERS), BODY)
    assert status == 502 and json.loads(body)["error"] == "sink-rejected"
    assert len(sink.requests) == 1


def test_no_2xx_before_the_sink_accepted_even_when_it_is_slow(sink, relay):
    sink.set_latency(0.3)
    started = time.monotonic()
    status, _, _ = post(relay.url, signed(BODY, BINARY_HEADERS), BODY)
    assert status == 202
    assert len(sink.events) == 1  # recorded before the relay answered
    assert time.monotonic() - started >= 0.3


def test_metrics_count_forwarded_events(sink, relay):
    post(relay.url, signed(BODY, BINARY_HEADERS), BODY)
    status, _, text = post(relay.url.rstrip("/") + "/metrics", {}, b"", method="GET")
    assert status == 200
    assert 'relay_events_forwarded_total{outcome="accepted"} 1.0' in text.decode()


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"RELAY_SIGNING_SECRET": SECRET}, "K_SINK"),
        ({"K_SINK": "http://a/"}, "RELAY_SIGNING_SECRET"),
        ({"K_SINK": "ftp://a/", "RELAY_SIGNING_SECRET": SECRET}, "K_SINK"),
        ({"K_SINK": "http://a/", "RELAY_SIGNING_SECRET": "whsec_***"}, "RELAY_SIGNING_SECRET"),
        ({"K_SINK": "http://a/", "RELAY_SIGNING_SECRET": "whsec_c2hvcnQ="}, "RELAY_SIGNING_SECRET"),
        (
            {"K_SINK": "http://a/", "RELAY_SIGNING_SECRET": SECRET, "DELIVERY_CONCURRENCY": "0"},
            "DELIVERY_CONCURRENCY",
        ),
    ],
)
def test_invalid_settings_name_the_variable_not_the_value(environ, name):
    with pytest.raises(SettingError) as raised:
        read_settings(EnvReader(environ))
    assert raised.value.name == name
    assert SECRET.removeprefix("whsec_") not in str(raised.value)


def test_settings_repr_hides_the_secret():
    settings = read_settings(EnvReader({"K_SINK": "http://a/", "RELAY_SIGNING_SECRET": SECRET}))
    assert SECRET not in repr(settings)
    assert (settings.timeout_seconds, settings.retry_budget_seconds) == (3.0, 5.0)
    assert (settings.concurrency, settings.retry_after_seconds) == (64, 5)


def test_cos_handler_delivers_signed_through_the_relay_to_the_sink(sink, relay):
    """The whole source path: SCF handler -> (signed) relay -> in-cluster sink."""
    from runtime.tencent_cos_source import index
    from runtime.tencent_cos_source.cos_settings import load_settings

    notification = json.loads(
        (pathlib.Path(__file__).parent / "fixtures" / "cos_notification_put.json").read_text()
    )
    settings = load_settings(
        {"K_SINK": relay.url, "SINK_SIGNING_SECRET": SECRET, "FUNCTION_NAME": "cos-source-fn"}
    )
    result = index.handle(notification, {"time_limit_in_ms": 10000}, settings)
    [event] = sink.events
    assert result["ids"] == [event.id]
    assert event.attributes["subject"] == "photos/2024/a b你.jpg"
    assert event.attributes["cosbucket"] == "examplebucket-1250000000"
    assert "Authorization" not in event.data.decode()
    # Without the secret the relay turns the function away, and the function reports it.
    unsigned = load_settings({"K_SINK": relay.url, "FUNCTION_NAME": "cos-source-fn"})
    with pytest.raises(index.DeliveryFailed):
        index.handle(notification, {"time_limit_in_ms": 10000}, unsigned)
    assert len(sink.events) == 1
