"""The SCF handler end to end against the CloudEvents sink fake (127.0.0.1 only)."""

import base64
import copy
import json
import pathlib
import socket
import ssl
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from runtime.tencent_cos_source import cos_delivery, cos_event, index
from runtime.tencent_cos_source.cos_event import NotACosNotification
from runtime.tencent_cos_source.cos_settings import Settings, load_settings
from tests.fakes.sink import CloudEventsSink, localhost_tls

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
CONTEXT = {"function_name": "ctx-fn", "request_id": "req-1", "time_limit_in_ms": 30000}
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def seed() -> dict:
    return json.loads((FIXTURES / "cos_notification_seed.json").read_text())


def three_records() -> dict:
    base = seed()["Records"][0]
    records = []
    for n in range(3):
        record = copy.deepcopy(base)
        record["cos"]["cosObject"]["key"] = f"/1253970026/testpic/dir/file {n}.txt"
        record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = f"req-{n}"
        records.append(record)
    return {"Records": records}


def fast(url: str, **overrides) -> Settings:
    """Settings with test-sized backoffs so retries take milliseconds."""
    environ = {
        "K_SINK": url,
        "FUNCTION_NAME": "cos-source-fn",
        "DELIVERY_BACKOFF_SECONDS": "0.01",
        "DELIVERY_BACKOFF_MAX_SECONDS": "0.05",
        "DELIVERY_RETRY_BUDGET_SECONDS": "2",
        "DELIVERY_TIMEOUT_SECONDS": "2",
        **overrides,
    }
    return load_settings(environ)


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def sink():
    with CloudEventsSink() as running:
        yield running


@pytest.fixture
def fresh_settings(monkeypatch):
    monkeypatch.setattr(index, "_settings", None)


def test_seed_notification_through_main_handler(sink, monkeypatch, fresh_settings):
    monkeypatch.setenv("K_SINK", sink.url)
    monkeypatch.delenv("FUNCTION_NAME", raising=False)
    monkeypatch.delenv("SCF_FUNCTIONNAME", raising=False)
    result = index.main_handler(seed(), CONTEXT)
    [event] = sink.wait_for(1)
    assert event.mode == "binary"
    assert event.attributes == {
        "id": "a415485d-749e-53e5-a7ab-26047fddd193",
        "source": "ctx-fn",  # no FUNCTION_NAME: the name SCF gives in the context
        "type": "tencent-cloud-cos-event",
        "specversion": "1.0",
        "time": "2018-12-19T07:49:30Z",
        "subject": "testfile",
        "datacontenttype": "application/json",
        "cosbucket": "testpic-1253970026",
        "cosregion": "cd",
        "coseventname": "cos:ObjectCreated:*",
    }
    record = event.json()["Records"][0]
    assert record["cos"] == seed()["Records"][0]["cos"]
    assert record["event"]["requestParameters"]["requestHeaders"] == {}
    assert "q-sign" not in event.data.decode()
    assert result == {
        "records": 1,
        "delivered": 1,
        "failed": 0,
        "duplicates": 0,
        "ids": ["a415485d-749e-53e5-a7ab-26047fddd193"],
    }


def test_three_records_three_ids_same_on_reinvocation(sink):
    settings = fast(sink.url)
    first = index.handle(three_records(), CONTEXT, settings)
    second = index.handle(three_records(), CONTEXT, settings)
    events = sink.wait_for(6)
    assert len(set(first["ids"])) == 3
    assert first["ids"] == second["ids"]
    assert sorted(e.id for e in events) == sorted(first["ids"] * 2)
    assert {e.attributes["subject"] for e in events} == {f"dir/file {n}.txt" for n in range(3)}
    assert events[0].headers["ce-subject"].startswith("dir/file%20")


def test_failures_for_the_next_requests_are_retried_and_delivered(sink, capsys):
    sink.fail_next(4, status=503)
    result = index.handle(three_records(), CONTEXT, fast(sink.url, DELIVERY_CONCURRENCY="1"))
    assert result["delivered"] == 3
    assert sorted(e.id for e in sink.events) == sorted(result["ids"])
    assert [r.status for r in sink.requests].count(503) == 4
    attempts = {line["id"]: line["attempts"] for line in log_lines(capsys) if "attempts" in line}
    assert sum(attempts.values()) == 7


@pytest.mark.parametrize("status", [500, 502, 429])
def test_retryable_statuses(sink, status):
    sink.fail_next(2, status=status)
    index.handle(seed(), CONTEXT, fast(sink.url))
    assert [r.status for r in sink.requests] == [status, status, 200]


def test_retry_after_is_honoured(sink):
    sink.fail_next(1, status=503, retry_after=1)
    index.handle(seed(), CONTEXT, fast(sink.url))
    first, second = sink.requests
    assert first.headers["ce-id"] == second.headers["ce-id"]
    assert second.received_at - first.received_at >= 0.9  # not the 10-50 ms test backoff


def test_sink_that_stays_down_names_every_failed_id(sink, capsys):
    sink.respond_with(503)
    with pytest.raises(index.DeliveryFailed) as raised:
        index.handle(three_records(), CONTEXT, fast(sink.url, DELIVERY_RETRY_BUDGET_SECONDS="0.3"))
    events, _ = cos_event.events_from_notification(three_records(), "x", datetime.now(timezone.utc))
    expected = {e.id for e in events}
    assert set(raised.value.ids) == expected
    for event_id in expected:
        assert event_id in str(raised.value)
    assert sink.events == []
    lines = log_lines(capsys)
    assert sum(1 for line in lines if line["msg"] == "event not delivered") == 3
    assert lines[-1]["msg"] == "notification handled" and lines[-1]["failed"] == 3


def test_partial_failure_keeps_ids_and_retry_delivers_the_rest(sink):
    notification = three_records()
    settings = fast(sink.url, DELIVERY_RETRY_BUDGET_SECONDS="0.3")
    victim = index.handle(three_records(), CONTEXT, settings)["ids"][1]
    sink.reset()
    sink.fail_when(lambda request: request.headers.get("ce-id") == victim)
    with pytest.raises(index.DeliveryFailed) as raised:
        index.handle(notification, CONTEXT, settings)
    assert raised.value.ids == [victim]
    delivered_first = sorted(e.id for e in sink.events)
    assert victim not in delivered_first and len(delivered_first) == 2
    # SCF's asynchronous retry re-sends the same notification: every id is the same as before.
    sink.reset()
    retried = index.handle(copy.deepcopy(notification), CONTEXT, settings)
    assert sorted(retried["ids"]) == sorted([*delivered_first, victim])
    assert sorted(e.id for e in sink.events) == sorted(retried["ids"])


def test_client_errors_are_not_retried(sink):
    sink.respond_with(400)
    with pytest.raises(index.DeliveryFailed):
        index.handle(seed(), CONTEXT, fast(sink.url))
    assert len(sink.requests) == 1


def test_connection_refused_is_retried_until_the_budget(capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = fast(f"http://127.0.0.1:{port}/", DELIVERY_RETRY_BUDGET_SECONDS="0.3")
    with pytest.raises(index.DeliveryFailed):
        index.handle(seed(), CONTEXT, settings)
    [outcome] = [line for line in log_lines(capsys) if line["msg"] == "event not delivered"]
    assert outcome["attempts"] > 1
    assert "ConnectionRefusedError" in outcome["error"]


def test_the_invocation_time_limit_bounds_delivery(sink):
    sink.respond_with(503)
    settings = fast(sink.url, DELIVERY_RETRY_BUDGET_SECONDS="60")
    started = time.monotonic()
    with pytest.raises(index.DeliveryFailed):
        index.handle(seed(), {"time_limit_in_ms": 400}, settings)
    assert time.monotonic() - started < 2  # not the 60 s budget


@pytest.mark.parametrize(
    ("context", "budget"),
    [
        ({"time_limit_in_ms": 3000}, 2.7),  # 10 % margin under 10 s
        ({"time_limit_in_ms": 900000}, 60.0),  # the retry budget is smaller
        ({"time_limit_in_ms": 30000}, 29.0),  # 1 s margin
        ({"time_limit_in_ms": "oops"}, 60.0),
        ({}, 60.0),
        (None, 60.0),
        (type("Ctx", (), {"get_remaining_time_in_millis": lambda self: 5000})(), 4.5),
    ],
)
def test_delivery_budget(context, budget):
    settings = load_settings({"K_SINK": "http://a/"})
    assert index.delivery_budget(context, settings) == pytest.approx(budget)


def test_malformed_input_raises_and_sends_nothing(sink, capsys):
    broken = three_records()
    del broken["Records"][2]["event"]
    with pytest.raises(NotACosNotification, match="record 2 has no 'event' object"):
        index.handle(broken, CONTEXT, fast(sink.url))
    [line] = log_lines(capsys)
    assert line["msg"] == "not a COS notification" and "record 2" in line["error"]
    with pytest.raises(NotACosNotification):
        index.handle({"hello": "world"}, CONTEXT, fast(sink.url))
    assert sink.requests == []


def test_signed_delivery_verifies_with_the_standard_webhooks_library(sink):
    index.handle(three_records(), CONTEXT, fast(sink.url, SINK_SIGNING_SECRET=SECRET))
    events = sink.wait_for(3)
    for event in events:
        Webhook(SECRET).verify(event.data, event.headers, json_parse=False)
        assert event.headers["webhook-id"] == event.id
    tampered = dict(events[0].headers, **{"webhook-id": events[1].id})
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(events[0].data, tampered)


def test_logs_one_line_per_event_without_secrets_or_data(sink, capsys):
    index.handle(three_records(), CONTEXT, fast(sink.url, SINK_SIGNING_SECRET=SECRET))
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines()]
    assert [line["msg"] for line in lines].count("event delivered") == 3
    assert all("data" not in line for line in lines)
    assert SECRET.removeprefix("whsec_") not in output
    assert "q-sign" not in output


def test_debug_mode_logs_the_scrubbed_data(sink, capsys):
    index.handle(seed(), CONTEXT, fast(sink.url, DEBUG_MODE="true"))
    [line] = [line for line in log_lines(capsys) if line["msg"] == "event delivered"]
    assert line["data"]["cos"]["cosBucket"]["name"] == "testpic"
    assert line["data"]["event"]["requestParameters"]["requestHeaders"] == {}


def test_invalid_settings_fail_every_invocation_clearly(monkeypatch, fresh_settings):
    monkeypatch.delenv("K_SINK", raising=False)
    monkeypatch.delenv("EVENT_GATEWAY", raising=False)
    monkeypatch.setenv("VANUS_EVENTBUS", "bus")
    for _ in range(2):
        with pytest.raises(index.SettingsError, match="EVENT_GATEWAY is required"):
            index.main_handler(seed(), CONTEXT)


def test_vanus_gateway_path_reaches_the_sink(sink):
    settings = load_settings(
        {"EVENT_GATEWAY": f"127.0.0.1:{sink.port}", "VANUS_EVENTBUS": "bus", "FUNCTION_NAME": "f"}
    )
    index.handle(seed(), CONTEXT, settings)
    assert sink.wait_for(1)[0].path == "/gateway/bus"


def deliver(events, sender, on_outcome=lambda outcome: None, concurrency=1):
    policy = cos_delivery.RetryPolicy(1, 0.01, 0.05)
    return cos_delivery.deliver_all(
        events, sender, policy, concurrency, time.monotonic() + 5, on_outcome
    )


@pytest.mark.parametrize(
    ("attempt", "step"), [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (12, 1.0)]
)
def test_backoff_is_equal_jitter_within_its_step(attempt, step):
    policy = cos_delivery.RetryPolicy(1, 0.1, 1.0)
    delays = [policy.backoff(attempt) for _ in range(500)]
    assert all(step / 2 <= delay < step for delay in delays)
    # Spread over the whole upper half, not a constant: retries of many events must not align.
    assert min(delays) < step * 0.55 and max(delays) > step * 0.95


def test_a_broken_log_does_not_stop_deliveries(sink):
    events, _ = cos_event.events_from_notification(three_records(), "f", datetime.now(timezone.utc))

    def broken_log(outcome):
        raise RuntimeError("stdout is gone")

    outcomes = deliver(events, cos_delivery.Sender(sink.url), broken_log)
    assert [o.delivered for o in outcomes] == [True, True, True]
    assert len(sink.events) == 3


@pytest.mark.parametrize("concurrency", [1, 3])
def test_an_unexpected_error_fails_the_event_instead_of_losing_it(sink, concurrency):
    events, _ = cos_event.events_from_notification(three_records(), "f", datetime.now(timezone.utc))
    victim = events[1].id

    class BuggySender(cos_delivery.Sender):
        def post(self, conn, attributes, body, timeout):
            if attributes["id"] == victim:
                raise KeyError("bug")
            return super().post(conn, attributes, body, timeout)

    outcomes = deliver(events, BuggySender(sink.url), concurrency=concurrency)
    assert [o.event.id for o in outcomes] == [e.id for e in events]
    assert [o.delivered for o in outcomes] == [True, False, True]
    assert outcomes[1].error == "KeyError: 'bug'"


@pytest.fixture
def tls_sink(tmp_path, monkeypatch):
    """An https sink whose certificate only a CA made for this test vouches for.

    The handler is made to trust that CA the way an operator would, through SSL_CERT_FILE, which
    OpenSSL reads when the handler builds its one default TLS context.
    """
    server = localhost_tls(tmp_path / "ca.pem")
    monkeypatch.setattr(cos_delivery, "_tls", None)
    with CloudEventsSink(tls=server) as running:
        yield running, str(tmp_path / "ca.pem")


def test_https_sink_with_a_trusted_certificate(tls_sink, monkeypatch, capsys):
    sink, ca_file = tls_sink
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    result = index.handle(three_records(), CONTEXT, fast(sink.url))
    assert sink.url.startswith("https://")
    assert sorted(e.id for e in sink.wait_for(3)) == sorted(result["ids"])
    delivered = [line for line in log_lines(capsys) if line["msg"] == "event delivered"]
    assert len(delivered) == 3
    # One verifying TLS context per container, shared by every sender.
    assert cos_delivery._tls.verify_mode == ssl.CERT_REQUIRED and cos_delivery._tls.check_hostname
    assert cos_delivery.Sender("https://other.example.com/")._ssl is cos_delivery._tls


def test_https_sink_with_an_untrusted_certificate_gets_nothing(tls_sink, monkeypatch, capsys):
    sink, _ = tls_sink  # the test CA is not trusted: the system's CAs are
    settings = fast(sink.url, DELIVERY_RETRY_BUDGET_SECONDS="0.3")
    with pytest.raises(index.DeliveryFailed) as failed:
        index.handle(seed(), CONTEXT, settings)
    assert len(failed.value.ids) == 1
    assert sink.events == []
    [line] = [line for line in log_lines(capsys) if line["msg"] == "event not delivered"]
    assert "CERTIFICATE_VERIFY_FAILED" in line["error"]
