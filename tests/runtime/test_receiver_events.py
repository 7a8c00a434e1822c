"""Table tests of the pure request parser (runtime.receiver.events)."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path

import pytest
import yaml

from runtime.receiver import BackgroundServer, Delivery, Receiver, error_response
from runtime.receiver.errors import InvalidEvent, UnsupportedMediaType
from runtime.receiver.events import parse_events

BINARY = {
    "ce-specversion": "1.0",
    "ce-type": "any.event.type",
    "ce-source": "some.origin/intance",
    "ce-id": "536808d3-88be-4077-9d7a-a3f162705f79",
}
STRUCTURED = {"specversion": "1.0", "type": "t", "source": "s", "id": "e-1"}


def binary(body: bytes = b"{}", content_type: str | None = "application/json", **overrides):
    headers = dict(BINARY)
    for name, value in overrides.items():
        key = "ce-" + name
        if value is None:
            headers.pop(key, None)
        else:
            headers[key] = value
    items = list(headers.items())
    if content_type is not None:
        items.append(("Content-Type", content_type))
    return items, body


def structured(**fields):
    event = {**STRUCTURED, **fields}
    event = {k: v for k, v in event.items() if v is not None}
    return [("Content-Type", "application/cloudevents+json")], json.dumps(event).encode()


def test_binary_keeps_the_raw_body_and_the_content_type():
    body = b'{"message":"Hello from TriggerMesh!"}'
    mode, [event] = parse_events(*binary(body))
    assert mode == "binary"
    assert event.data is body
    assert event.id == "536808d3-88be-4077-9d7a-a3f162705f79"
    assert event.type == "any.event.type"
    assert event.content_type == "application/json"
    assert event.event.get_source() == "some.origin/intance"


def test_binary_data_is_bytes_even_when_it_is_text_or_invalid_utf8():
    for body in (b"plain text", b"\xff\xfe\x00binary", b""):
        _, [event] = parse_events(*binary(body, content_type="application/octet-stream"))
        assert event.data == body


def test_binary_without_content_type_has_none():
    _, [event] = parse_events(*binary(b"x", content_type=None))
    assert event.content_type is None


def test_binary_header_values_are_percent_decoded_and_extensions_kept():
    _, [event] = parse_events(*binary(subject="a%20b%25c", partition="p1"))
    assert event.event.get_subject() == "a b%c"
    assert event.event.get_extension("partition") == "p1"


def test_binary_time_is_parsed():
    _, [event] = parse_events(*binary(time="2026-11-22T01:02:03.5+08:00"))
    assert event.event.get_time().utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"id": None}, "missing required header ce-id"),
        ({"id": ""}, "header ce-id must be a non-empty string"),
        ({"source": None}, "ce-source"),
        ({"type": None}, "ce-type"),
        ({"specversion": None}, "ce-specversion"),
        ({"specversion": "0.3"}, "specversion"),
        ({"specversion": "0.1"}, "specversion"),
        ({"time": "yesterday"}, "ce-time"),
        ({"time": "2026-11-22"}, "ce-time"),
        ({"time": "2026-11-22T01:02Z"}, "ce-time"),
        ({"time": "2026-11-22T01:02:03+08"}, "ce-time"),
        ({"time": "2026-13-22T01:02:03Z"}, "ce-time"),
        ({"time": "2026-11-22T01:02:03"}, "ce-time"),
        ({"Bad_Ext": "x"}, "bad_ext"),
        ({"datacontenttype": "text/plain"}, "Content-Type"),
    ],
)
def test_binary_rejections(overrides, message):
    with pytest.raises(InvalidEvent) as caught:
        parse_events(*binary(**overrides))
    assert message.lower() in caught.value.message.lower()
    assert caught.value.status == 400


def test_binary_empty_id_after_decoding_is_rejected():
    # "%20"-only ids decode to a space: non-empty, accepted by the spec. An empty value is not.
    headers, body = binary()
    headers = [(n, v) for n, v in headers if n != "ce-id"] + [("ce-id", "")]
    with pytest.raises(InvalidEvent):
        parse_events(headers, body)


def test_repeated_ce_header_is_rejected_not_guessed():
    headers, body = binary()
    with pytest.raises(InvalidEvent, match="more than once"):
        parse_events([*headers, ("Ce-Id", "other")], body)


@pytest.mark.parametrize(
    "headers",
    [
        [("Content-Type", "application/json")],
        [],
        [("Content-Type", "text/plain")],
        [("Content-Type", "application/cloudevents+avro")],
        [("Content-Type", "application/cloudevents+protobuf"), ("ce-id", "1")],
    ],
)
def test_not_a_cloudevent_is_415(headers):
    with pytest.raises(UnsupportedMediaType) as caught:
        parse_events(headers, b'{"id": "1"}')
    assert caught.value.status == 415


def test_structured_json_data_is_serialised_compactly():
    mode, [event] = parse_events(*structured(data={"b": [1, 2], "ü": "x"}))
    assert mode == "structured"
    assert json.loads(event.data) == {"b": [1, 2], "ü": "x"}
    assert event.data == '{"b":[1,2],"ü":"x"}'.encode()
    # The JSON event format implies application/json for a JSON `data` without datacontenttype.
    assert event.content_type == "application/json"


def test_structured_text_data_with_text_content_type_is_the_string_itself():
    _, [event] = parse_events(*structured(data="hello", datacontenttype="text/plain"))
    assert event.data == b"hello"
    assert event.content_type == "text/plain"


def test_structured_string_data_with_json_content_type_stays_json():
    _, [event] = parse_events(*structured(data="hello", datacontenttype="application/json"))
    assert event.data == b'"hello"'


def test_structured_data_base64_is_decoded_to_the_exact_bytes():
    raw = bytes(range(256))
    encoded = base64.b64encode(raw).decode()
    _, [event] = parse_events(*structured(data_base64=encoded, datacontenttype="image/png"))
    assert event.data == raw
    assert event.content_type == "image/png"


def test_structured_without_data_has_empty_data_and_no_content_type():
    _, [event] = parse_events(*structured())
    assert event.data == b""
    assert event.content_type is None


def test_content_type_parameters_and_case_are_accepted():
    headers = [("content-type", "Application/CloudEvents+JSON; charset=utf-8")]
    mode, [event] = parse_events(headers, json.dumps(STRUCTURED).encode())
    assert mode == "structured"
    assert event.id == "e-1"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"id": None}, "missing required attribute id"),
        ({"id": ""}, "attribute id must be a non-empty string"),
        ({"id": 5}, "attribute id must be a non-empty string"),
        ({"source": None}, "attribute source"),
        ({"type": None}, "attribute type"),
        ({"specversion": None}, "attribute specversion"),
        ({"specversion": "0.3"}, "specversion"),
        ({"time": "2026-11-22 01:02:03"}, "time"),
        ({"time": 12345}, "time"),
        ({"data": 1, "data_base64": "AA=="}, "mutually exclusive"),
        ({"data_base64": "not base64!"}, "base64"),
        ({"data_base64": 7}, "base64"),
        ({"datacontenttype": ""}, "datacontenttype"),
        ({"Ext": "x"}, "ext"),
    ],
)
def test_structured_rejections(fields, message):
    with pytest.raises(InvalidEvent) as caught:
        parse_events(*structured(**fields))
    assert message.lower() in caught.value.message.lower()


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[]", b'"x"'])
def test_structured_body_must_be_a_json_object(body):
    with pytest.raises(InvalidEvent):
        parse_events([("Content-Type", "application/cloudevents+json")], body)


def batch(*events):
    return [("Content-Type", "application/cloudevents-batch+json")], json.dumps(events).encode()


def test_batch_yields_every_event_in_order():
    mode, events = parse_events(
        *batch({**STRUCTURED, "id": "a", "data": {"n": 1}}, {**STRUCTURED, "id": "b"})
    )
    assert mode == "batch"
    assert [e.id for e in events] == ["a", "b"]
    assert events[0].data == b'{"n":1}'
    assert all(e.mode == "batch" for e in events)


def test_empty_batch_is_valid():
    assert parse_events(*batch()) == ("batch", [])


def test_batch_error_names_the_failing_index():
    with pytest.raises(InvalidEvent) as caught:
        parse_events(*batch({**STRUCTURED, "id": "a"}, {**STRUCTURED, "id": ""}))
    assert caught.value.index == 1
    assert caught.value.message.startswith("event 1:")
    assert caught.value.to_json()["index"] == 1


@pytest.mark.parametrize("body", [b"{}", b'{"id": "x"}', b"[1]", b"nope"])
def test_batch_body_must_be_an_array_of_objects(body):
    with pytest.raises(InvalidEvent):
        parse_events([("Content-Type", "application/cloudevents-batch+json")], body)


def test_error_messages_never_echo_data():
    secret = "s3cr3t-payload"
    cases = [
        structured(data=secret, id=""),
        structured(data_base64=secret + "!"),
        binary(secret.encode(), id=None),
    ]
    for headers, body in cases:
        with pytest.raises(InvalidEvent) as caught:
            parse_events(headers, body)
        assert secret not in json.dumps(caught.value.to_json())


def test_attributes_are_as_sent_without_an_invented_time():
    # cloudevents 2.x adds `time` to events that have none; the receiver reports what was sent.
    _, [event] = parse_events(*binary())
    assert "time" not in event.attributes
    assert event.attributes["datacontenttype"] == "application/json"
    _, [event] = parse_events(*structured(data={"a": 1}))
    assert "time" not in event.attributes
    _, [event] = parse_events(*binary(time="2026-11-22T01:02:03.50+08:00"))
    # As sent, not re-spelled (a datetime would print 01:02:03.500000+08:00).
    assert event.attributes["time"] == "2026-11-22T01:02:03.50+08:00"
    assert event.event.get_time().utcoffset().total_seconds() == 8 * 3600


# ---- conformance tables (tests/runtime/fixtures/cloudevents/, see their notes for the sources)

FIXTURES = Path(__file__).parent / "fixtures" / "cloudevents"
JSON_FORMAT = json.loads((FIXTURES / "json-format.json").read_text(encoding="utf-8"))
HTTP_BINARY = yaml.safe_load((FIXTURES / "http-binary.yaml").read_text(encoding="utf-8"))
STRUCTURED_HEADERS = [("Content-Type", "application/cloudevents+json")]
BATCH_HEADERS = [("Content-Type", "application/cloudevents-batch+json")]


def _case_body(case) -> bytes:
    if "body" in case:
        return case["body"].encode("utf-8")
    return json.dumps(case["event"]).encode("utf-8")


def _by_name(cases):
    return [pytest.param(case, id=case["name"]) for case in cases]


@pytest.mark.parametrize("case", _by_name(c for c in JSON_FORMAT["events"] if c["valid"]))
def test_json_format_valid_events(case):
    for headers, body in (
        (STRUCTURED_HEADERS, _case_body(case)),
        (BATCH_HEADERS, b"[" + _case_body(case) + b"]"),
    ):
        _, [event] = parse_events(headers, body)
        if "attributes" in case:
            assert event.attributes == case["attributes"]
        if "data" in case:
            assert event.data == case["data"].encode("utf-8")
        if "data_base64" in case:
            assert event.data == base64.b64decode(case["data_base64"])
        if "content_type" in case:
            assert event.content_type == case["content_type"]


@pytest.mark.parametrize("case", _by_name(c for c in JSON_FORMAT["events"] if not c["valid"]))
def test_json_format_invalid_events(case):
    with pytest.raises(InvalidEvent) as caught:
        parse_events(STRUCTURED_HEADERS, _case_body(case))
    assert case["reason"].lower() in caught.value.message.lower()
    assert caught.value.status == 400
    json.dumps(caught.value.to_json()).encode("utf-8")  # the error body is always encodable
    with pytest.raises(InvalidEvent) as caught:
        parse_events(BATCH_HEADERS, b"[" + _case_body(case) + b"]")
    if caught.value.index is not None:  # body-level errors (bad JSON) have no index
        assert caught.value.index == 0


@pytest.mark.parametrize("case", _by_name(JSON_FORMAT["batches"]))
def test_json_format_batches(case):
    body = json.dumps(case["batch"]).encode()
    if case["valid"]:
        mode, events = parse_events(BATCH_HEADERS, body)
        assert mode == "batch"
        assert [e.id for e in events] == case["ids"]
    else:
        with pytest.raises(InvalidEvent) as caught:
            parse_events(BATCH_HEADERS, body)
        assert caught.value.index == case["index"]


def _binary_case(case):
    headers = {**HTTP_BINARY["base"], "Content-Type": "application/octet-stream"}
    for name, value in case.get("headers", {}).items():
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return list(headers.items()), case.get("body", "{}").encode("utf-8")


@pytest.mark.parametrize("case", _by_name(HTTP_BINARY["valid"]))
def test_http_binary_valid(case):
    headers, body = _binary_case(case)
    mode, [event] = parse_events(headers, body)
    assert mode == "binary"
    assert event.data == body
    for name, value in case.get("attributes", {}).items():
        assert event.attributes[name] == value


@pytest.mark.parametrize("case", _by_name(HTTP_BINARY["invalid"]))
def test_http_binary_invalid(case):
    with pytest.raises(InvalidEvent) as caught:
        parse_events(*_binary_case(case))
    assert case["reason"].lower() in caught.value.message.lower()
    assert caught.value.status == 400


# ---- through aiohttp's own HTTP parser: raw bytes as a real server receives them
# aiohttp (both its C and Python parsers) decodes header bytes as UTF-8 with `surrogateescape`:
# a byte that is not UTF-8 reaches the parser as a lone surrogate, and used to fail as a 500
# where the value was re-encoded (object metadata, relay headers).


def _raw_post(port: int, head: bytes, body: bytes) -> tuple[int, bytes]:
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        + head
        + b"Content-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


class _Accept:
    def __init__(self):
        self.events = []

    async def __call__(self, delivery: Delivery):
        self.events.extend(delivery.events)
        return error_response(200, "ok", "stored")


@pytest.fixture
def raw_server():
    handler = _Accept()
    receiver = Receiver(handler, name="conformance", max_body_bytes=1 << 20)
    with BackgroundServer(receiver, drain_timeout=1) as running:
        yield running, handler, receiver


def _rejected(receiver: Receiver, code: str) -> float:
    value = receiver.registry.get_sample_value(
        "conformance_requests_rejected_total", {"reason": code}
    )
    return value or 0.0


BINARY_HEAD = b"ce-specversion: 1.0\r\nce-type: t\r\nce-source: s\r\nce-id: e-1\r\n"


@pytest.mark.parametrize(
    ("head", "status", "subject"),
    [
        # Raw UTF-8: accepted as before.
        (b"ce-subject: Caf\xc3\xa9\r\nContent-Type: text/plain\r\n", 200, "Caf\u00e9"),
        # Latin-1, as the npm SDK's binary mode sends it: was a 500, retried into a DLQ.
        (b"ce-subject: Caf\xe9\r\nContent-Type: text/plain\r\n", 400, None),
        (b"ce-id: \xff\xfe\r\nContent-Type: text/plain\r\n", 400, None),
        (b"ce-partition: \xed\xa0\x80\r\nContent-Type: text/plain\r\n", 400, None),
        (b"Content-Type: text/plain; charset=\xe9\r\n", 400, None),
    ],
)
def test_raw_header_bytes_must_be_utf8(raw_server, head, status, subject):
    server, handler, receiver = raw_server
    if b"ce-id:" in head:
        head = BINARY_HEAD.replace(b"ce-id: e-1\r\n", b"") + head
    else:
        head = BINARY_HEAD + head
    status_code, payload = _raw_post(server.port, head, b"x")
    assert status_code == status
    if status == 400:
        reply = json.loads(payload)
        # The server shell refuses raw non-UTF-8 header bytes before any body is read.
        assert reply["error"] == "invalid-header"
        assert "UTF-8" in reply["message"]
        assert handler.events == []
        assert _rejected(receiver, "invalid-header") == 1
    else:
        assert handler.events[0].attributes["subject"] == subject


def test_non_token_header_names_never_reach_the_parser(raw_server):
    # llhttp refuses a header name that is not an RFC 9110 token with its own 400.
    server, handler, _ = raw_server
    status_code, _ = _raw_post(server.port, BINARY_HEAD + b"ce-caf\xe9: x\r\n", b"x")
    assert status_code == 400
    assert handler.events == []


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        (b"application/cloudevents+json", b"[" * 200_000, "nested too deeply"),
        (b"application/cloudevents-batch+json", b"[" * 200_000, "nested too deeply"),
        (b"application/cloudevents+json", b'{"data":' + b"9" * 20_000 + b"}", "JSON"),
        (b"application/cloudevents+json", b'{"data":1E400}', "non-finite"),
    ],
)
def test_hostile_json_is_400_with_the_json_error_body(raw_server, content_type, body, message):
    server, handler, receiver = raw_server
    status_code, payload = _raw_post(server.port, b"Content-Type: " + content_type + b"\r\n", body)
    assert status_code == 400
    reply = json.loads(payload)
    assert reply["error"] == "invalid-event"
    assert message.lower() in reply["message"].lower()
    assert _rejected(receiver, "invalid-event") == 1
    assert handler.events == []
