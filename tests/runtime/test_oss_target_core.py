"""Table tests of the OSS target's pure parts: keys, object plans, responses, retries (the
writer's error classification and wiring: test_oss_target_writer.py)."""

from __future__ import annotations

import base64
import json
import random
from types import SimpleNamespace
from urllib.parse import unquote, urlparse, urlsplit

import pytest
import requests
import yarl
from alibabacloud_oss_v2._client import AddressStyle, _build_url
from alibabacloud_oss_v2.types import OperationInput
from oss2.api import _UrlMaker

from runtime.alibaba_oss_target.core import (
    MAX_METADATA_BYTES,
    error_event,
    event_document,
    plan_write,
    plan_writes,
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


@pytest.mark.parametrize(
    ("prefix", "event_id"),
    [
        ("", "."),
        ("", ".."),
        ("", "a/./b"),
        ("", "a/../b"),
        ("", "./a"),
        ("", "a/."),
        ("", "a/.."),
        ("events/", "."),
        ("events/", ".."),
        ("events/", "../x"),
        ("events", "/.."),  # the prefix's last segment is completed by the id
    ],
)
def test_dot_segments_are_invalid_keys(prefix, event_id):
    with pytest.raises(InvalidKey, match="segment") as caught:
        object_key(prefix, event_id)
    assert caught.value.code == "invalid-key"


@pytest.mark.parametrize(
    "key", ["a//b", "a.", "a..b", "...", ".a", "a/", "x/.y", "events/.hidden", "a/.../b"]
)
def test_keys_that_look_like_paths_but_survive_the_url_are_valid(key):
    assert object_key("", key) == key


KEY_SAMPLES = [
    ".",
    "..",
    "a/./b",
    "a/../b",
    "./a",
    "a/.",
    "a/..",
    "x/.y",
    "a//b",
    "a.",
    "...",
    ".a",
    "a/",
    "a/.../b",
    "ü/./ß",
    "%2e",
    "a?b#c",
]


@pytest.mark.parametrize("key", KEY_SAMPLES)
def test_the_key_rule_matches_what_both_sdks_http_layers_send(key):
    """A key is accepted exactly when the URL each SDK builds still names that key after its HTTP
    layer (requests/urllib3 for oss2; yarl for alibabacloud-oss-v2's aiohttp transport, requests
    for its sync one) has normalised the path."""
    endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
    urls = []
    for path_style in (False, True):
        urls.append(_UrlMaker(endpoint, False, path_style)("b", key))
        style = AddressStyle.Path if path_style else AddressStyle.Virtual
        options = SimpleNamespace(endpoint=urlparse(endpoint), address_style=style)
        urls.append(_build_url(OperationInput("PutObject", "PUT", bucket="b", key=key), options))
    assert all(unquote(urlsplit(url).path).endswith("/" + key) for url in urls)
    sent = [requests.Request("PUT", url).prepare().path_url for url in urls]
    sent += [yarl.URL(url).raw_path for url in urls[1::2]]  # the v2 SDK's aiohttp transport
    survives = all(
        path.split("?")[0] == urlsplit(url).path
        for path, url in zip(sent, urls + urls[1::2], strict=True)
    )
    try:
        object_key("", key)
        accepted = True
    except InvalidKey:
        accepted = False
    assert accepted == survives


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
    event = structured_event(subject='ü "x" 100%', count=3, flag=True)
    headers = plan_write(event, prefix="", store="data").headers
    assert headers["x-oss-meta-ce-subject"] == "%C3%BC%20%22x%22%20100%25"
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


# ---- issue 11: attributes as sent, JSON data kept exact, one object per key in a request


def test_metadata_holds_attribute_values_as_sent():
    event = binary_event(time="2018-04-05T03:56:24.10-00:00", subject="Caf%C3%A9", flag="true")
    headers = plan_write(event, prefix="", store="data").headers
    # Not re-spelled as 2018-04-05T03:56:24.100000Z; percent-decoding gives back what was sent.
    assert headers["x-oss-meta-ce-time"] == "2018-04-05T03:56:24.10-00:00"
    assert headers["x-oss-meta-ce-subject"] == "Caf%C3%A9"
    leap = structured_event(time="2016-12-31T23:59:60Z", extint=-7, extbool=False)
    headers = plan_write(leap, prefix="", store="data").headers
    assert headers["x-oss-meta-ce-time"] == "2016-12-31T23:59:60Z"
    assert (headers["x-oss-meta-ce-extint"], headers["x-oss-meta-ce-extbool"]) == ("-7", "false")
    assert json.loads(event_document(leap))["time"] == "2016-12-31T23:59:60Z"


@pytest.mark.parametrize("encoded", ["%FF", "%FE", "%C0%A0"])
def test_ids_that_decode_to_invalid_utf8_are_refused_not_merged_into_one_key(encoded):
    # Both used to become U+FFFD, one key: the second event overwrote the first.
    with pytest.raises(InvalidEvent, match="not UTF-8"):
        binary_event(id=encoded)
    assert binary_event(id="%C3%BF").id != binary_event(id="%C3%BE").id


def test_explicit_null_data_is_stored_as_json_null_and_absent_data_as_nothing():
    null = structured_event(data=None)
    assert plan_write(null, prefix="", store="data").body == b"null"
    assert plan_write(null, prefix="", store="data").headers["Content-Type"] == "application/json"
    assert json.loads(event_document(null))["data"] is None
    absent = structured_event()
    assert plan_write(absent, prefix="", store="data").body == b""
    assert "data" not in json.loads(event_document(absent))


@pytest.mark.parametrize(
    "content_type", ["application/json", "APPLICATION/JSON", "application/vnd.x+JSON; v=1"]
)
def test_store_event_inlines_every_json_media_type(content_type):
    event = binary_event(body=b'{"a": 1}', content_type=content_type)
    assert json.loads(event_document(event))["data"] == {"a": 1}


@pytest.mark.parametrize(
    "body",
    [
        b'{"x": NaN}',
        b"[1E400]",
        b'"\\ud800"',  # a lone surrogate escape: parses, cannot be written as UTF-8
        b"[" * 50_000 + b"]" * 50_000,  # RecursionError while parsing
        b"[" + b"9" * 5000 + b"]",  # over Python's integer conversion limit
        b"{oops",
    ],
)
def test_store_event_keeps_binary_data_that_is_not_strict_json_exact(body):
    event = binary_event(body=body, content_type="application/json")
    document = json.loads(event_document(event))
    assert base64.b64decode(document["data_base64"]) == body
    assert "data" not in document


def test_an_event_repeated_in_a_batch_is_one_write():
    same = [structured_event(id="a"), structured_event(id="a"), structured_event(id="b")]
    writes = plan_writes(same, prefix="", store="data", batch=True)
    assert [w.key for w in writes] == ["a", "a", "b"]
    assert writes[0] == writes[1]


def test_the_same_id_from_two_sources_in_one_batch_is_refused():
    events = [structured_event(id="a", source="s1"), structured_event(id="a", source="s2")]
    with pytest.raises(InvalidKey) as caught:
        plan_writes(events, prefix="", store="data", batch=True)
    assert caught.value.index == 1
    assert caught.value.code == "invalid-key"
    assert caught.value.message.startswith("event 1: ")


def test_plan_writes_names_the_index_of_an_invalid_key_in_a_batch_only():
    events = [structured_event(id="ok"), structured_event(id="..")]
    with pytest.raises(InvalidKey) as caught:
        plan_writes(events, prefix="", store="data", batch=True)
    assert caught.value.index == 1
    with pytest.raises(InvalidKey) as caught:
        plan_writes(events[1:], prefix="", store="data", batch=False)
    assert caught.value.index is None
