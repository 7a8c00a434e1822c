"""The pure core of the COS source: notification record -> CloudEvent attributes and data."""

import copy
import json
import pathlib
import subprocess
import uuid
from datetime import datetime, timezone

import pytest

from runtime.tencent_cos_source import cos_event
from runtime.tencent_cos_source.cos_event import NotACosNotification

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def events(notification, source="cos-source-fn"):
    return cos_event.events_from_notification(notification, source, NOW)


def test_seed_sample_gives_exactly_the_documented_attributes():
    [event], duplicates = events(load("cos_notification_seed.json"))
    assert duplicates == 0
    assert event.attributes == {
        # Pinned: a changed id would break deduplication of notifications retried across a deploy.
        "id": "a415485d-749e-53e5-a7ab-26047fddd193",
        "source": "cos-source-fn",
        "type": "tencent-cloud-cos-event",
        "specversion": "1.0",
        "time": "2018-12-19T07:49:30Z",
        "subject": "testfile",
        "datacontenttype": "application/json",
        "cosbucket": "testpic-1253970026",
        "cosregion": "cd",
        "coseventname": "cos:ObjectCreated:*",
    }


def test_data_is_the_record_wrapped_in_records_without_credentials():
    notification = load("cos_notification_put.json")
    [event], _ = events(notification)
    data = json.loads(event.body)
    expected = copy.deepcopy(notification["Records"][0])
    headers = expected["event"]["requestParameters"]["requestHeaders"]
    for name in ("Authorization", "x-cos-security-token", "Cookie"):
        del headers[name]
    assert data == {"Records": [expected]}
    assert headers == {"Content-Type": "image/jpeg"}
    for secret in ("q-signature", "sts-token-example", "session=example", "AKIDEXAMPLE"):
        assert secret not in event.body.decode()


def test_id_is_uuid5_of_the_canonical_scrubbed_record():
    notification = load("cos_notification_put.json")
    [event], _ = events(notification)
    scrubbed = cos_event.scrub(notification["Records"][0])
    canonical = json.dumps(scrubbed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = uuid.uuid5(uuid.UUID(bytes=cos_event.ID_NAMESPACE), canonical)
    assert event.id == str(expected)
    assert expected.version == 5


def test_id_ignores_key_order_and_credentials_but_not_content():
    record = load("cos_notification_put.json")["Records"][0]
    reordered = json.loads(json.dumps(record, sort_keys=True))
    other_signature = copy.deepcopy(record)
    other_signature["event"]["requestParameters"]["requestHeaders"]["Authorization"] = "q-x"
    other_object = copy.deepcopy(record)
    other_object["cos"]["cosObject"]["meta"]["x-cos-request-id"] = "another-request"

    def id_of(r):
        return cos_event.event_from_record(r, "fn", NOW).id

    assert id_of(reordered) == id_of(record) == id_of(other_signature)
    assert id_of(other_object) != id_of(record)


def test_three_records_give_three_distinct_ids_stable_across_invocations():
    base = load("cos_notification_seed.json")["Records"][0]
    records = []
    for n in range(3):
        record = copy.deepcopy(base)
        record["cos"]["cosObject"]["key"] = f"/1253970026/testpic/file-{n}"
        record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = f"req-{n}"
        records.append(record)
    first, _ = events({"Records": records})
    again, _ = events({"Records": copy.deepcopy(records)}, source="cos-source-fn")
    assert len({e.id for e in first}) == 3
    assert [e.id for e in first] == [e.id for e in again]
    assert [e.subject for e in first] == ["file-0", "file-1", "file-2"]


def test_identical_records_in_one_batch_are_one_event():
    record = load("cos_notification_seed.json")["Records"][0]
    found, duplicates = events({"Records": [record, copy.deepcopy(record)]})
    assert len(found) == 1
    assert duplicates == 1


@pytest.mark.parametrize("event_time", ["yesterday", True, [1], 1e20, "2018-13-45T00:00:00Z"])
def test_invalid_event_time_is_a_clear_error(event_time):
    record = load("cos_notification_seed.json")["Records"][0]
    record["event"]["eventTime"] = event_time
    with pytest.raises(NotACosNotification, match="record 0 has an invalid eventTime"):
        events({"Records": [record]})


def test_missing_event_time_uses_now():
    record = load("cos_notification_seed.json")["Records"][0]
    del record["event"]["eventTime"]
    [event], _ = events({"Records": [record]})
    assert event.attributes["time"] == "2026-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("key", "bucket", "expected"),
    [
        ("/1253970026/testpic/testfile", {"appid": "1253970026", "name": "testpic"}, "testfile"),
        (
            "/1253970026/testpic/a/b%20c.txt",
            {"appid": "1253970026", "name": "testpic"},
            "a/b c.txt",
        ),
        (
            "/1253970026/testpic/%E4%BD%A0%2B+.txt",
            {"appid": "1253970026", "name": "testpic"},
            "你++.txt",
        ),
        ("/1253970026/testpic/dir/", {"appid": "1253970026", "name": "testpic"}, "dir/"),
        ("/1253970026/testpic-1253970026/k", {}, "k"),  # no bucket info: the pattern still applies
        ("plain/key", {"appid": "1", "name": "b"}, "plain/key"),
        ("/1253970026/testpic/", {"appid": "1253970026", "name": "testpic"}, None),
        ("", {"appid": "1", "name": "b"}, None),
        (None, {"appid": "1", "name": "b"}, None),
    ],
)
def test_subject_is_the_decoded_key_without_prefix(key, bucket, expected):
    record = {"cos": {"cosObject": {"key": key}, "cosBucket": bucket}, "event": {}}
    assert cos_event.subject_of(record) == expected


@pytest.mark.parametrize(
    ("bucket", "event_name", "expected"),
    [
        (
            {"name": "b", "appid": "125", "region": "cd"},
            "cos:ObjectRemove:Delete",
            {"cosbucket": "b-125", "cosregion": "cd", "coseventname": "cos:ObjectRemove:Delete"},
        ),
        (
            {"name": "b-125", "appid": "125", "region": "sh", "cosRegion": "ap-shanghai"},
            None,
            {"cosbucket": "b-125", "cosregion": "ap-shanghai"},
        ),
        ({}, "", {}),
        ("not-an-object", "cos:ObjectCreated:Put", {"coseventname": "cos:ObjectCreated:Put"}),
        ({"name": "b"}, None, {"cosbucket": "b"}),
    ],
)
def test_extensions(bucket, event_name, expected):
    record = {"cos": {"cosBucket": bucket}, "event": {"eventName": event_name}}
    extensions = cos_event.extensions_of(record)
    assert extensions == expected
    for name in extensions:
        assert name.isalnum() and name.islower() and len(name) <= 20


@pytest.mark.parametrize(
    ("headers", "kept"),
    [
        ({"Authorization": "x", "Host": "h"}, {"Host": "h"}),
        ({"authorization": "x", "Proxy-Authorization": "y"}, {}),
        ({"x-cos-security-token": "t", "X-Amz-Security-Token": "t"}, {}),
        (
            {"Cookie": "c", "Set-Cookie": "c", "x-cos-meta-color": "red"},
            {"x-cos-meta-color": "red"},
        ),
        ({"X-Signature": "s", "x-api-secret": "s", "x-credential": "c"}, {}),
        (
            {"Content-Type": "a/b", "Content-Length": "3"},
            {"Content-Type": "a/b", "Content-Length": "3"},
        ),
    ],
)
def test_credential_headers_are_scrubbed(headers, kept):
    record = {"cos": {}, "event": {"requestParameters": {"requestHeaders": headers}}}
    scrubbed = cos_event.scrub(record)
    assert scrubbed["event"]["requestParameters"]["requestHeaders"] == kept
    assert record["event"]["requestParameters"]["requestHeaders"] == headers  # input untouched


def test_scrubbing_only_touches_header_maps():
    record = {"cos": {"cosObject": {"meta": {"x-cos-meta-author": "me"}}}, "event": {}}
    assert cos_event.scrub(record) == record


@pytest.mark.parametrize(
    ("notification", "message"),
    [
        (None, "no 'Records'"),
        ([], "no 'Records'"),
        ({"records": []}, "no 'Records'"),
        ({"Records": []}, "non-empty list"),
        ({"Records": {"cos": {}}}, "non-empty list"),
        ({"Records": ["x"]}, "record 0 is not an object"),
        ({"Records": [{"cos": {}, "event": {}}, {"cos": {}}]}, "record 1 has no 'event' object"),
        ({"Records": [{"event": {}}]}, "record 0 has no 'cos' object"),
        ({"Records": [{"cos": "x", "event": {}}]}, "record 0 has no 'cos' object"),
    ],
)
def test_malformed_notifications_are_rejected(notification, message):
    with pytest.raises(NotACosNotification, match=message):
        events(notification)


TIME_CASES = [
    (1545205770, "2018-12-19T07:49:30Z"),
    (1545205770.25, "2018-12-19T07:49:30.25Z"),
    ("1545205770", "2018-12-19T07:49:30Z"),
    ("2018-12-19T07:49:30Z", "2018-12-19T07:49:30Z"),
    ("2018-12-19T07:49:30.5Z", "2018-12-19T07:49:30.5Z"),
    ("2018-12-19T15:49:30+08:00", "2018-12-19T07:49:30Z"),
    ("2018-12-19T07:49:30.1234567Z", "2018-12-19T07:49:30.123456Z"),
    ("2018-12-19 07:49:30", "2018-12-19T07:49:30Z"),  # naive: COS writes UTC
    (None, "2026-01-02T03:04:05Z"),  # absent: now
    ("", "2026-01-02T03:04:05Z"),
]


@pytest.mark.parametrize(("event_time", "expected"), TIME_CASES)
def test_time_from_event_time(event_time, expected):
    assert cos_event.event_time(event_time, NOW) == expected


def test_time_table_and_ids_on_python_310():
    """SCF runs Python 3.10, whose datetime.fromisoformat is much stricter than 3.11's."""
    from tests.runtime.test_packaging import python_310

    interpreter = python_310()
    if interpreter is None:
        pytest.skip("no Python 3.10 interpreter on this machine (set PYTHON310 to run this)")
    code = (
        "import json, sys; from datetime import datetime, timezone\n"
        "sys.path.insert(0, sys.argv[1]); import cos_event\n"
        "now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)\n"
        "cases, notification = json.load(sys.stdin)\n"
        "times = [cos_event.event_time(value, now) for value, _ in cases]\n"
        "events, _ = cos_event.events_from_notification(notification, 'cos-source-fn', now)\n"
        "print(json.dumps([times, [e.attributes for e in events]]))"
    )
    notification = load("cos_notification_put.json")
    out = subprocess.run(
        [interpreter, "-I", "-c", code, str(pathlib.Path(cos_event.__file__).parent)],
        input=json.dumps([TIME_CASES, notification]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    times, attributes = json.loads(out.stdout)
    assert times == [expected for _, expected in TIME_CASES]
    assert attributes == [e.attributes for e in events(notification)[0]]


@pytest.mark.parametrize(
    "record",
    [
        {"cos": {"cosObject": "x", "cosBucket": ["y"]}, "event": {"eventName": 7}},
        {"cos": {"cosObject": {"key": 5}}, "event": {"requestParameters": "none"}},
        {"cos": {}, "event": {"requestParameters": {"requestHeaders": ["Authorization"]}}},
        {"cos": {"cosObject": {"key": "/1/b/%ZZ"}}, "event": {"eventTime": 0}},
    ],
)
def test_odd_but_valid_shapes_still_become_events(record):
    [event], _ = events({"Records": [record]})
    assert json.loads(event.body) == {"Records": [cos_event.scrub(record)]}
    assert set(event.attributes) >= {"id", "source", "type", "specversion", "time"}
