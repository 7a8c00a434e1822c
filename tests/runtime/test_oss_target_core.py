"""Table tests of the OSS target's pure parts: keys, object plans, responses, retries (the
writer's error classification and wiring: test_oss_target_writer.py)."""

from __future__ import annotations

import base64
import json
import random

import pytest

from runtime.alibaba_oss_target.core import (
    MAX_METADATA_BYTES,
    error_event,
    event_document,
    plan_write,
    success_event,
)
from runtime.alibaba_oss_target.errors import Failure
from runtime.alibaba_oss_target.keys import InvalidKey, object_key
from runtime.receiver.errors import InvalidEvent
from runtime.receiver.events import parse_events
from runtime.receiver.retry import RetryPolicy


def binary_event(
    body=b'{"message":"Hello from TriggerMesh!"}', content_type="application/json", **ce
):
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "any.event.type",
        "ce-source": "some.origin/intance",
        "ce-id": "536808d3-88be-4077-9d7a-a3f162705f79",
        **{f"ce-{k}": v for k, v in ce.items()},
    }
    if content_type:
        headers["content-type"] = content_type
    return parse_events(headers.items(), body)[1][0]


def structured_event(**fields):
    event = {"specversion": "1.0", "type": "t", "source": "s", "id": "e-1", **fields}
    headers = [("content-type", "application/cloudevents+json")]
    return parse_events(headers, json.dumps(event).encode())[1][0]


# ---- keys


@pytest.mark.parametrize(
    ("prefix", "event_id", "key"),
    [
        ("", "536808d3", "536808d3"),
        ("events/", "a b/ü?&=+.json", "events/a b/ü?&=+.json"),
        ("p-", "x" * 1021, "p-" + "x" * 1021),
    ],
)
def test_valid_keys(prefix, event_id, key):
    assert object_key(prefix, event_id) == key


@pytest.mark.parametrize(
    ("prefix", "event_id", "reason"),
    [
        ("", "x" * 1024, "at most 1023"),
        ("pre/", "ü" * 510, "at most 1023"),
        ("", "/etc/passwd", "must not start"),
        ("", "\\share", "must not start"),
        ("", "line\nbreak", "control"),
        ("", "tab\there", "control"),
        ("", "nul\x00", "control"),
        ("", "del\x7f", "control"),
        ("", "\ud800", "Unicode"),
    ],
)
def test_invalid_keys_are_400(prefix, event_id, reason):
    with pytest.raises(InvalidKey) as caught:
        object_key(prefix, event_id)
    assert reason in caught.value.message
    assert caught.value.status == 400
    assert event_id not in caught.value.message


# ---- what gets written


def test_store_data_writes_the_raw_body_with_its_content_type_and_attributes_as_metadata():
    event = binary_event(time="2026-11-22T01:02:03Z", subject="a%20b")
    write = plan_write(event, prefix="in/", store="data")
    assert write.key == "in/536808d3-88be-4077-9d7a-a3f162705f79"
    assert write.body is event.data
    assert write.headers == {
        "Content-Type": "application/json",
        "x-oss-meta-ce-specversion": "1.0",
        "x-oss-meta-ce-type": "any.event.type",
        "x-oss-meta-ce-source": "some.origin/intance",
        "x-oss-meta-ce-id": "536808d3-88be-4077-9d7a-a3f162705f79",
        "x-oss-meta-ce-time": "2026-11-22T01:02:03Z",
        "x-oss-meta-ce-subject": "a%20b",
        "x-oss-meta-ce-datacontenttype": "application/json",
    }


def test_missing_content_type_is_octet_stream_never_guessed_from_the_key():
    event = binary_event(body=b"\x00\x01", content_type=None, id="photo.jpg")
    write = plan_write(event, prefix="", store="data")
    assert write.headers["Content-Type"] == "application/octet-stream"
    assert write.key == "photo.jpg"


def test_metadata_values_are_percent_encoded_so_headers_stay_ascii_and_single_line():
    event = structured_event(subject="ü\r\nInjected: yes", count=3, flag=True)
    headers = plan_write(event, prefix="", store="data").headers
    assert headers["x-oss-meta-ce-subject"] == "%C3%BC%0D%0AInjected:%20yes"
    assert headers["x-oss-meta-ce-count"] == "3"
    assert headers["x-oss-meta-ce-flag"] == "true"
    assert all(value.isascii() and value.isprintable() for value in headers.values())


def test_oversized_metadata_is_refused_before_writing():
    event = structured_event(big="x" * MAX_METADATA_BYTES)
    with pytest.raises(InvalidEvent, match="metadata"):
        plan_write(event, prefix="", store="data")


@pytest.mark.parametrize(
    ("fields", "body"),
    [
        ({"data": {"a": [1, "ü"]}}, b'{"a":[1,"\xc3\xbc"]}'),
        ({"data": "plain", "datacontenttype": "text/plain"}, b"plain"),
        ({"data_base64": base64.b64encode(b"\xff\x00").decode()}, b"\xff\x00"),
        ({}, b""),
    ],
)
def test_structured_data_bodies(fields, body):
    assert plan_write(structured_event(**fields), prefix="", store="data").body == body


def test_store_event_writes_the_whole_event_as_json():
    event = binary_event(time="2026-11-22T01:02:03Z", partition="p")
    write = plan_write(event, prefix="", store="event")
    assert write.headers["Content-Type"] == "application/cloudevents+json"
    document = json.loads(write.body)
    assert document == {
        "specversion": "1.0",
        "type": "any.event.type",
        "source": "some.origin/intance",
        "id": "536808d3-88be-4077-9d7a-a3f162705f79",
        "time": "2026-11-22T01:02:03Z",
        "partition": "p",
        "datacontenttype": "application/json",
        "data": {"message": "Hello from TriggerMesh!"},
    }


def test_store_event_keeps_non_json_data_exact_in_base64():
    raw = b"\xff\xfe binary"
    event = binary_event(body=raw, content_type="application/octet-stream")
    document = json.loads(event_document(event))
    assert base64.b64decode(document["data_base64"]) == raw
    assert "data" not in document
    # JSON content type but not JSON: still exact.
    document = json.loads(
        event_document(binary_event(body=b"{oops", content_type="application/json"))
    )
    assert base64.b64decode(document["data_base64"]) == b"{oops"


# ---- response events


def test_success_response_event():
    event = binary_event()
    write = plan_write(event, prefix="", store="data")
    reply = success_event(event, source="alibabaoss/b", bucket="b", write=write, etag="E1")
    assert reply.get_type() == "any.event.type.response"
    assert reply.get_source() == "alibabaoss/b"
    assert reply.get_subject() == write.key
    assert reply.get_extension("category") == "success"
    assert reply.get_id() != event.id
    assert json.loads(reply.get_data()) == {
        "bucket": "b",
        "key": write.key,
        "etag": "E1",
        "size": len(event.data),
    }


def test_error_response_event_carries_code_and_request_id():
    event = binary_event()
    failure = Failure(False, "access-denied", "AccessDenied", 403, "RID-1")
    reply = error_event(event, source="s", bucket="b", key="k", failure=failure)
    assert reply.get_extension("category") == "error"
    assert reply.get_type() == "any.event.type.response"
    assert json.loads(reply.get_data()) == {
        "bucket": "b",
        "key": "k",
        "code": "AccessDenied",
        "reason": "access-denied",
        "status": 403,
        "requestId": "RID-1",
    }


# ---- retry policy


def test_backoff_is_full_jitter_under_an_exponential_cap():
    policy = RetryPolicy(budget=100, base=0.1, cap=1.0, rng=random.Random(7))
    for attempt, ceiling in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (40, 1.0)]:
        delays = [policy.next_delay(attempt, 0) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole range, not fixed


@pytest.mark.parametrize(
    ("budget", "elapsed", "gives_up"), [(0, 0, True), (1, 1.0, True), (10, 0, False)]
)
def test_backoff_stops_at_the_budget(budget, elapsed, gives_up):
    policy = RetryPolicy(budget=budget, base=0.01, cap=0.01, rng=random.Random(1))
    assert (policy.next_delay(0, elapsed) is None) is gives_up
