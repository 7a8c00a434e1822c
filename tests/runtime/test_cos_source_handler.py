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
        "rejected": 0,
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


# Knative's data-plane contract: 404 (not ready yet) and 409 are retried like 429 and 5xx.
@pytest.mark.parametrize("status", [500, 502, 503, 504, 429, 404, 409])
def test_retryable_statuses(sink, status):
    sink.fail_next(2, status=status)
    index.handle(seed(), CONTEXT, fast(sink.url))
    assert [r.status for r in sink.requests] == [status, status, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 405, 410, 413, 415, 422])
def test_other_client_errors_are_final_at_once(sink, status, capsys):
    sink.respond_with(status)
    with pytest.raises(index.DeliveryFailed):
        index.handle(seed(), CONTEXT, fast(sink.url))
    assert len(sink.requests) == 1
    [line] = [line for line in log_lines(capsys) if line["msg"] == "event not delivered"]
    assert (line["status"], line["attempts"], line["error"]) == (status, 1, f"HTTP {status}")


def test_retry_after_is_honoured(sink):
    sink.fail_next(1, status=503, retry_after=1)
    index.handle(seed(), CONTEXT, fast(sink.url))
    first, second = sink.requests
    assert first.headers["ce-id"] == second.headers["ce-id"]
    assert second.received_at - first.received_at >= 0.9  # not the 10-50 ms test backoff


# Sent as latin-1 bytes, read back by http.client as "\xb2" ("²"), which str.isdigit() accepts
# and float() refuses; 5,000 digits are beyond int()'s limit; a day and more is not believed.
@pytest.mark.parametrize("value", ["\xb2", "\xb9", "9" * 5000, "86401", "-1", "1.5", "soon"])
def test_a_bad_retry_after_is_ignored_not_a_failure(sink, value):
    sink.fail_next(1, status=503, retry_after=value)
    result = index.handle(seed(), CONTEXT, fast(sink.url))
    assert result["delivered"] == 1
    assert [r.status for r in sink.requests] == [503, 200]


RETRY_AFTER_CASES = [
    (None, None),
    ("", None),
    ("0", 0.0),
    ("7", 7.0),
    (" 120 ", 120.0),
    ("000000000012", 12.0),
    ("86400", 86400.0),
    ("86401", None),
    ("9" * 5000, None),
    ("\xb2", None),  # superscript two: str.isdigit() says yes
    ("\u0663", None),  # Arabic-Indic three
    ("\uff13", None),  # fullwidth three
    ("-5", None),
    ("1.5", None),
    ("5, 5", None),  # repeated header, joined by http.client
    ("Sun, 29 Nov 2026 22:01:40 GMT", 100.0),  # HTTP-date, 100 s after NOW
    ("Sun, 29 Nov 2026 21:00:00 GMT", 0.0),  # in the past: retry now
    ("Sun, 29 Nov 2026 22:00:00 -0000", None),  # no zone: not an HTTP-date
    ("Sun, 30 Nov 2036 22:00:00 GMT", None),  # years away
    ("Mon, 99 Foo 2026 99:99:99 GMT", None),
]


@pytest.mark.parametrize(("value", "seconds"), RETRY_AFTER_CASES)
def test_retry_after_parsing(value, seconds):
    now = datetime(2026, 11, 29, 22, 0, 0, tzinfo=timezone.utc).timestamp()
    assert cos_delivery.retry_after_seconds(value, now=now) == seconds


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


def test_not_a_notification_raises_and_sends_nothing(sink, capsys):
    with pytest.raises(NotACosNotification, match="no 'Records'"):
        index.handle({"hello": "world"}, CONTEXT, fast(sink.url))
    [line] = log_lines(capsys)
    assert line["msg"] == "not a COS notification" and "no 'Records'" in line["error"]
    assert sink.requests == []


BAD_RECORDS = {
    "no event object": (lambda r: r.pop("event"), "record 1: no 'event' object"),
    "eventTime in words": (
        lambda r: r["event"].update(eventTime="yesterday"),
        "record 1: invalid eventTime",
    ),
    "lone surrogate in the key": (
        lambda r: r["cos"]["cosObject"].update(key="/1253970026/testpic/a\udc80.txt"),
        "record 1: cos.cosObject.key holds text UTF-8 cannot encode: a lone surrogate U+DC80",
    ),
    "NaN size": (
        lambda r: r["cos"]["cosObject"].update(size=float("nan")),
        "record 1: cos.cosObject.size holds nan, which JSON cannot carry",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RECORDS))
def test_a_bad_record_is_reported_the_others_delivered_and_the_invocation_fails(sink, capsys, case):
    break_record, reason = BAD_RECORDS[case]
    notification = three_records()
    break_record(notification["Records"][1])
    settings = fast(sink.url)
    with pytest.raises(index.DeliveryFailed) as raised:
        index.handle(notification, CONTEXT, settings)
    assert raised.value.ids == []
    [rejected] = raised.value.rejected
    assert rejected.startswith(reason)
    assert "1 record(s) rejected: " + reason in str(raised.value)
    delivered = sorted(e.id for e in sink.events)
    good = {"Records": [notification["Records"][0], notification["Records"][2]]}
    assert delivered == sorted(index.handle(good, CONTEXT, settings)["ids"])
    lines = log_lines(capsys)
    [line] = [line for line in lines if line["msg"] == "record rejected"]
    assert line["record"] == 1 and line["error"].startswith(reason.removeprefix("record 1: "))
    summary = next(line for line in lines if line["msg"] == "notification handled")
    assert summary["level"] == "error"
    assert (summary["records"], summary["delivered"], summary["rejected"]) == (3, 2, 1)
    # SCF retries the invocation: the delivered records are sent again with the same ids.
    sink.reset()
    with pytest.raises(index.DeliveryFailed):
        index.handle(copy.deepcopy(notification), CONTEXT, settings)
    assert sorted(e.id for e in sink.events) == delivered


def test_signed_delivery_is_structured_mode_signed_over_the_whole_event(sink):
    notification = three_records()
    index.handle(notification, CONTEXT, fast(sink.url, SINK_SIGNING_SECRET=SECRET))
    events = sink.wait_for(3)
    unsigned, _ = cos_event.events_from_notification(
        notification, "cos-source-fn", datetime.now(timezone.utc)
    )
    binary_bodies = {e.id: e.body for e in unsigned}
    for event, request in zip(events, sink.requests, strict=True):
        assert event.mode == "structured"
        assert request.headers["content-type"] == "application/cloudevents+json; charset=utf-8"
        assert not [name for name in request.headers if name.startswith("ce-")]
        # The signature covers the body, and the body is the whole event: every attribute.
        Webhook(SECRET).verify(request.body, request.headers, json_parse=False)
        document = json.loads(request.body)
        assert document["id"] == request.headers["webhook-id"] == event.id
        assert {k: v for k, v in document.items() if k != "data"} == event.attributes
        assert request.headers["webhook-timestamp"].isdigit()
        # Exactly the encoding of the contract (compact, UTF-8, no escapes).
        encoded = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        assert request.body == encoded
        # The relay re-encodes `data`: the bytes an unsigned sink gets in binary mode.
        assert event.data == binary_bodies[event.id]
    tampered = dict(events[0].headers, **{"webhook-id": events[1].id})
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(SECRET).verify(sink.requests[0].body, tampered)


def test_unsigned_delivery_stays_binary_mode(sink):
    index.handle(seed(), CONTEXT, fast(sink.url))
    [request] = sink.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["ce-id"] == "a415485d-749e-53e5-a7ab-26047fddd193"
    assert not [name for name in request.headers if name.startswith("webhook-")]


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
        def post(self, conn, event, timeout):
            if event.id == victim:
                raise KeyError("bug")
            return super().post(conn, event, timeout)

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


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_sink_whose_certificate_does_not_verify_fails_at_once(
    tls_sink, monkeypatch, capsys, host
):
    """Untrusted CA (the test CA is not trusted: the system's CAs are), or a trusted certificate
    for another name (issued for 127.0.0.1, reached as localhost): nothing is sent, and no attempt
    is repeated, since the same certificate fails the same way every time."""
    sink, ca_file = tls_sink
    if host == "localhost":
        monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    settings = fast(sink.url.replace("127.0.0.1", host), DELIVERY_RETRY_BUDGET_SECONDS="2")
    with pytest.raises(index.DeliveryFailed) as failed:
        index.handle(three_records(), CONTEXT, settings)
    assert len(failed.value.ids) == 3
    assert sink.events == []
    lines = [line for line in log_lines(capsys) if line["msg"] == "event not delivered"]
    assert [line["attempts"] for line in lines] == [1, 1, 1]
    for line in lines:
        assert line["error"].startswith("SSLCertVerificationError")
        assert "CERTIFICATE_VERIFY_FAILED" in line["error"]
        assert ("match" in line["error"]) is (host == "localhost")
