"""The OSS target against what an attacker found after issues 11 and 12: header values the SDK
signs differently from what arrives, readiness with no way back, retry budgets spent waiting in
the queue, numbers and duplicate members rewritten, metadata over OSS's limit. Served for real
against the verifying emulator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time

import pytest
import requests
from cloudevents.core.v1.event import CloudEvent
from prometheus_client import CollectorRegistry

from runtime.alibaba_oss_target.core import ObjectWrite, plan_write
from runtime.alibaba_oss_target.credentials import (
    FAILURES_BEFORE_UNREADY,
    RefreshingCredentials,
    StaticSource,
    StsFileSource,
)
from runtime.alibaba_oss_target.metrics import TargetMetrics
from runtime.alibaba_oss_target.uploader import NotStored, Stored, Uploader
from runtime.alibaba_oss_target.writer import PutResult
from runtime.receiver.errors import InvalidEvent
from runtime.receiver.events import ReceivedEvent, parse_events
from runtime.receiver.retry import RetryPolicy
from tests.runtime import test_oss_target_service as service
from tests.runtime.test_oss_target_service import BUCKET, SEED_HEADERS, post

# The served target against the verifying emulator, as in test_oss_target_service.
store = service.store
start_target = service.start_target
target = service.target

STRUCTURED = {"Content-Type": "application/cloudevents+json"}


def structured(**fields):
    return {"specversion": "1.0", "id": "e-1", "source": "s", "type": "t", **fields}


def wait_for(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


# ---- F4: header values are exactly what the SDK signs


@pytest.mark.parametrize(
    "value", ["text/plain ", " text/plain", "text/plain; name=café", "text/plain;  q=1 "]
)
def test_a_datacontenttype_no_header_can_carry_exactly_is_400(value):
    body = json.dumps(structured(data="hi", datacontenttype=value)).encode()
    with pytest.raises(InvalidEvent) as caught:
        parse_events([("Content-Type", "application/cloudevents+json")], body)
    assert "Content-Type header" in caught.value.message


def test_plan_write_refuses_any_header_value_that_would_not_arrive_as_signed():
    _, [received] = parse_events(
        [("Content-Type", "application/cloudevents+json")],
        json.dumps(structured(data="hi", datacontenttype="text/plain")).encode(),
    )
    trailing = dataclasses.replace(received, content_type="text/plain ")
    with pytest.raises(InvalidEvent):
        plan_write(trailing, prefix="", store="data")


def test_trailing_space_content_types_are_400_and_readiness_stays(target, store):
    for index in range(FAILURES_BEFORE_UNREADY + 2):
        document = structured(id=f"ws-{index}", data="hi", datacontenttype="text/plain ")
        answer = requests.post(target.url, data=json.dumps(document), headers=STRUCTURED)
        assert answer.status_code == 400, answer.text
    assert requests.get(target.url + "readyz", timeout=5).status_code == 200
    assert store.keys(BUCKET) == []


def make(source, **kwargs):
    return RefreshingCredentials(source, logging.getLogger("runtime.oss_target"), **kwargs)


def refused_then_probation(credentials: RefreshingCredentials) -> list[bool]:
    """Ready after the first fetch, not ready after persistent refusals, ready again on
    probation (the refresh task times it), not ready again after more refusals."""

    async def scenario() -> list[bool]:
        await credentials.refresh()
        task = asyncio.create_task(credentials.run())
        seen = [credentials.ready]
        for _ in range(FAILURES_BEFORE_UNREADY):
            credentials.auth_failed("SignatureDoesNotMatch")
        seen.append(credentials.ready)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if credentials.ready:
                break
        seen.append(credentials.ready)
        for _ in range(FAILURES_BEFORE_UNREADY):
            credentials.auth_failed("SignatureDoesNotMatch")
        seen.append(credentials.ready)
        task.cancel()
        return seen

    return asyncio.run(scenario())


def test_static_credentials_come_back_on_probation():
    credentials = make(StaticSource("ak", "sk"), probation_seconds=0.2)
    assert refused_then_probation(credentials) == [True, False, True, False]


def test_an_unchanged_sts_file_comes_back_on_probation(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"AccessKeyId": "STS.a", "AccessKeySecret": "s"}))
    credentials = make(StsFileSource(str(path)), probation_seconds=0.2, poll_seconds=0.05)
    assert refused_then_probation(credentials) == [True, False, True, False]


_ = (CloudEvent, ReceivedEvent, SEED_HEADERS, post, wait_for)


# ---- F5: the retry budget counts from an event's first attempt; retries go first


class FlakyWriter:
    """Each key's first PUT fails (a transient error); every PUT takes `latency` seconds."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.tried: set[str] = set()
        self.stored: list[str] = []

    async def put(self, key, body, headers):
        await asyncio.sleep(self.latency)
        if key not in self.tried:
            self.tried.add(key)
            raise ConnectionResetError("dropped")
        self.stored.append(key)
        return PutResult(etag="e", request_id="r")

    async def close(self):
        pass


def test_events_queued_longer_than_the_budget_still_get_their_retries():
    """One slot, 6 events of one batch, budget 0.25 s: the last event's first attempt starts
    ~0.5 s after the request arrived. Its retry budget starts then, so every event is stored."""
    writer = FlakyWriter(latency=0.05)
    uploader = Uploader(
        writer,
        max_concurrency=1,
        policy=RetryPolicy(budget=0.25, base=0.001, cap=0.002),
        metrics=TargetMetrics(CollectorRegistry()),
    )
    writes = [ObjectWrite(key=f"k{i}", body=b"x", headers={}) for i in range(6)]

    async def scenario():
        return await asyncio.gather(*(uploader.store(write) for write in writes))

    results = asyncio.run(scenario())
    assert all(isinstance(result, Stored) for result in results), results
    assert [result.attempts for result in results] == [2] * 6
    # Retries took the slot before later first attempts: each event finished before the next
    # one's retry, so the order of completion is the order of arrival.
    assert writer.stored == [f"k{i}" for i in range(6)]


def test_an_event_that_never_gets_a_slot_is_not_stored_within_the_queue_bound():
    writer = FlakyWriter(latency=0.2)
    writer.tried = {f"k{i}" for i in range(10)}  # every PUT succeeds, slowly
    uploader = Uploader(
        writer,
        max_concurrency=1,
        policy=RetryPolicy(budget=0.1, base=0.001, cap=0.002),
        metrics=TargetMetrics(CollectorRegistry()),
    )
    writes = [ObjectWrite(key=f"k{i}", body=b"x", headers={}) for i in range(4)]

    async def scenario():
        return await asyncio.gather(*(uploader.store(write) for write in writes))

    results = asyncio.run(scenario())
    # 3 x 0.1 s of queueing admits the first two of 0.2 s each; the rest answer 503.
    assert isinstance(results[0], Stored)
    assert isinstance(results[-1], NotStored)
    assert results[-1].failure.retryable and results[-1].failure.reason == "queue-timeout"


# ---- F6: data stored with every digit; duplicate member names and underflow refused


EXACT = b'{"amount":12345678901234567.89,"tiny":0.000000000000000000000001,"n":1.50,"e":1e1}'


def test_structured_json_data_keeps_every_digit(target, store):
    body = b'{"specversion":"1.0","id":"num-1","source":"s","type":"t","data":' + EXACT + b"}"
    answer = requests.post(target.url, data=body, headers=STRUCTURED, timeout=10)
    assert answer.status_code == 200, answer.text
    assert store.get(BUCKET, "num-1").body == EXACT


def test_store_event_keeps_the_digits_of_a_binary_json_body(start_target, store):
    target = start_target(STORE="event")
    answer = post(target, body=EXACT, **{"Ce-Id": "num-2"})
    assert answer.status_code == 200, answer.text
    stored = store.get(BUCKET, "num-2").body
    assert b'"data":' + EXACT in stored


@pytest.mark.parametrize(
    ("data", "complaint"),
    [
        (b'{"dup":1,"dup":2}', "repeats the member name"),
        (b'{"a":{"x":1,"x":1}}', "repeats the member name"),
        (b"1e-400", "non-finite"),
        (b"-1e-330", "non-finite"),
        (b"1E400", "non-finite"),
    ],
)
def test_json_a_double_or_an_object_cannot_hold_is_400(target, store, data, complaint):
    body = b'{"specversion":"1.0","id":"bad","source":"s","type":"t","data":' + data + b"}"
    answer = requests.post(target.url, data=body, headers=STRUCTURED, timeout=10)
    assert answer.status_code == 400
    assert complaint in answer.json()["message"]
    assert store.keys(BUCKET) == []


def test_store_event_keeps_a_binary_body_with_duplicate_members_exact(start_target, store):
    import base64

    target = start_target(STORE="event")
    body = b'{"dup":1,"dup":2}'
    assert post(target, body=body, **{"Ce-Id": "dup-1"}).status_code == 200
    document = json.loads(store.get(BUCKET, "dup-1").body)
    assert base64.b64decode(document["data_base64"]) == body


# ---- F9: one event repeated in a batch with its data members in another order


def test_a_batch_repeating_an_event_with_reordered_data_is_one_event(target, store):
    first = structured(id="r-1", data={"a": 1, "b": 2.50})
    again = structured(id="r-1", data={"b": 2.50, "a": 1})
    answer = requests.post(
        target.url,
        data=json.dumps([first, again]),
        headers={"Content-Type": "application/cloudevents-batch+json"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert json.loads(store.get(BUCKET, "r-1").body) == {"a": 1, "b": 2.5}


# ---- F7: attributes over OSS's 8 KiB of metadata: stored, the largest left out and named


def test_an_event_whose_attributes_exceed_the_metadata_limit_is_stored(target, store):
    subject = "é" * 3000  # 6000 bytes of UTF-8, 18000 percent-encoded
    document = structured(id="meta-1", subject=subject, data={"a": 1})
    answer = requests.post(target.url, data=json.dumps(document), headers=STRUCTURED, timeout=10)
    assert answer.status_code == 200, answer.text
    stored = store.get(BUCKET, "meta-1")
    assert stored.body == b'{"a":1}'
    assert stored.metadata["omitted-attributes"] == "subject"
    assert stored.metadata["ce-id"] == "meta-1"
    assert "ce-subject" not in stored.metadata


# ---- F9: year 0000, error texts said once


def test_year_0000_is_valid_rfc3339_and_stored_as_sent(target, store):
    document = structured(id="y0", time="0000-01-01T00:00:00Z")
    answer = requests.post(target.url, data=json.dumps(document), headers=STRUCTURED, timeout=10)
    assert answer.status_code == 200, answer.text
    assert store.get(BUCKET, "y0").metadata["ce-time"] == "0000-01-01T00:00:00Z"


def test_year_0000_still_follows_the_calendar():
    body = json.dumps(structured(time="0000-02-30T00:00:00Z")).encode()
    with pytest.raises(InvalidEvent, match="time"):
        parse_events([("Content-Type", "application/cloudevents+json")], body)


def test_batch_error_texts_name_the_event_once():
    body = json.dumps([structured(), {"specversion": "1.0", "source": "s", "type": "t"}]).encode()
    with pytest.raises(InvalidEvent) as caught:
        parse_events([("Content-Type", "application/cloudevents-batch+json")], body)
    assert caught.value.message == "event 1: missing required attribute id"
