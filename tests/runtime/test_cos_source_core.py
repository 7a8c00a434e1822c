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
    expected = uuid.uuid5(cos_event.ID_NAMESPACE, canonical)
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


@pytest.mark.parametrize(
    "event_time",
    [
        "yesterday",
        True,
        [1],
        1e20,
        "2018-13-45T00:00:00Z",
        # float() reads these, a time must not: non-ASCII digits, digit separators, specials.
        "\uff11\uff15\uff14\uff15\uff12\uff10\uff15\uff17\uff17\uff10",  # fullwidth
        "\u0661\u0665\u0664\u0665\u0662\u0660\u0665\u0667\u0667\u0660",  # Arabic-Indic
        "1_545_205_770",
        "nan",
        "inf",
        float("nan"),
        "9" * 5000,  # beyond int()'s digit limit
        pytest.param(10**5000, id="10**5000"),
        "2018-12-19T07:49:30\u0661Z",
    ],
)
def test_invalid_event_time_is_a_clear_error(event_time):
    record = load("cos_notification_seed.json")["Records"][0]
    record["event"]["eventTime"] = event_time
    with pytest.raises(NotACosNotification, match=r"^record 0: invalid eventTime: ") as raised:
        events({"Records": [record]})
    if isinstance(event_time, str):  # the reason says what is wrong, never repeats the value
        assert event_time not in str(raised.value)


def test_missing_event_time_uses_now():
    record = load("cos_notification_seed.json")["Records"][0]
    del record["event"]["eventTime"]
    [event], _ = events({"Records": [record]})
    assert event.attributes["time"] == "2026-01-02T03:04:05Z"


BUCKET = {"appid": "1253970026", "name": "testpic"}
URL = "http://testpic-1253970026.cos.ap-chengdu.myqcloud.com/"


@pytest.mark.parametrize(
    ("key", "url_path", "expected"),
    [
        # The same object, the key sent percent-encoded or raw: one subject.
        ("a/b%20c%E4%BD%A0.txt", "a/b%20c%E4%BD%A0.txt", "a/b c你.txt"),
        ("a/b c你.txt", "a/b%20c%E4%BD%A0.txt", "a/b c你.txt"),
        # A key with a literal '%' in its name: raw, or encoded as %25.
        ("100%25 off.txt", "100%2525%20off.txt", "100%25 off.txt"),
        ("100%2525%20off.txt", "100%2525%20off.txt", "100%25 off.txt"),
        ("a+b.txt", "a%2Bb.txt", "a+b.txt"),
        ("a%2Bb.txt", "a%2Bb.txt", "a+b.txt"),
        ("testfile", "testfile", "testfile"),
        ("dir/", "dir/", "dir/"),
        # No URL to compare with: decoded when it is a well-formed encoding, else raw.
        ("a/b%20c%E4%BD%A0.txt", None, "a/b c你.txt"),
        ("a/b c你.txt", None, "a/b c你.txt"),
        ("%E4%BD%A0%2B+.txt", None, "你++.txt"),
        ("100% off.txt", None, "100% off.txt"),
        ("50%.txt", None, "50%.txt"),
        ("%ZZ", None, "%ZZ"),
        ("%FF.txt", None, "%FF.txt"),  # not UTF-8 once decoded: taken as raw
        # A URL for another object (or none that parses) is no evidence either way.
        ("a%20b", "other", "a b"),
    ],
)
def test_subject_from_an_encoded_or_a_raw_key(key, url_path, expected):
    cos_object = {"key": f"/1253970026/testpic/{key}"}
    if url_path is not None:
        cos_object["url"] = URL + url_path
    record = {"cos": {"cosObject": cos_object, "cosBucket": BUCKET}, "event": {}}
    assert cos_event.subject_of(record) == expected
    # `data` keeps the key exactly as COS sent it.
    event = cos_event.event_from_record(record, "fn", NOW)
    assert json.loads(event.body)["Records"][0]["cos"]["cosObject"]["key"] == cos_object["key"]


@pytest.mark.parametrize(
    ("key", "bucket", "expected"),
    [
        ("/1253970026/testpic/testfile", BUCKET, "testfile"),
        ("/1253970026/testpic-1253970026/k", {}, "k"),  # no bucket info: the pattern still applies
        ("plain/key", {"appid": "1", "name": "b"}, "plain/key"),
        ("/1253970026/testpic/", BUCKET, None),
        ("", {"appid": "1", "name": "b"}, None),
        (None, {"appid": "1", "name": "b"}, None),
    ],
)
def test_subject_is_the_key_without_prefix(key, bucket, expected):
    record = {"cos": {"cosObject": {"key": key}, "cosBucket": bucket}, "event": {}}
    assert cos_event.subject_of(record) == expected


@pytest.mark.parametrize(
    ("place", "value", "where"),
    [
        (("cos", "cosObject", "key"), "/1/b/a\udc80b", "cos.cosObject.key holds text UTF-8 cannot"),
        (
            ("cos", "cosObject", "meta", "x-cos-meta-note"),
            "\ud800",
            "cos.cosObject.meta.x-cos-meta-note",
        ),
        (("event", "eventName"), "cos:\udfff", "event.eventName"),
        (("event", "reqid"), float("nan"), "event.reqid holds nan, which JSON cannot carry"),
        (("event", "reqid"), float("inf"), "event.reqid holds inf"),
        (("event", "raw"), b"bytes", "event.raw holds a bytes, which JSON cannot carry"),
        (("event", "list"), ["ok", "\udc00"], "event.list[1] holds text"),
    ],
)
def test_unencodable_values_are_reported_by_place_without_the_text(place, value, where):
    record = load("cos_notification_seed.json")["Records"][0]
    target = record
    for parent in place[:-1]:
        target = target[parent]
    target[place[-1]] = value
    good = three_records()[0]
    conversion = cos_event.convert({"Records": [record, good]}, "fn", NOW)
    assert [e.id for e in conversion.events] == [cos_event.event_from_record(good, "fn", NOW).id]
    [rejected] = conversion.rejected
    assert rejected.index == 0 and where in rejected.reason
    assert "b\udc80" not in rejected.reason and "bytes'" not in rejected.reason


def test_an_unencodable_member_name_is_reported():
    record = load("cos_notification_seed.json")["Records"][0]
    record["cos"]["cosObject"]["meta"]["x-cos-meta-\udc80"] = "v"
    [rejected] = cos_event.convert({"Records": [record]}, "fn", NOW).rejected
    assert rejected.reason.startswith("a member name in cos.cosObject.meta holds text UTF-8 cannot")
    assert "U+DC80" in rejected.reason


def test_a_lone_surrogate_in_a_scrubbed_credential_does_not_matter():
    record = load("cos_notification_seed.json")["Records"][0]
    record["event"]["requestParameters"]["requestHeaders"]["Authorization"] = "\udc80"
    [event], _ = events({"Records": [record]})
    assert event.id == "a415485d-749e-53e5-a7ab-26047fddd193"


def test_structured_mode_carries_every_attribute_and_data_encoded_as_in_binary_mode():
    notification = load("cos_notification_put.json")
    [event], _ = events(notification)
    document = json.loads(event.structured())
    assert document == {**event.attributes, "data": json.loads(event.body)}
    assert list(document)[:5] == ["specversion", "id", "source", "type", "time"]
    assert list(document)[-1] == "data"
    # What the relay forwards in binary mode is exactly what the function sends unsigned sinks.
    reencoded = json.dumps(document["data"], separators=(",", ":"), ensure_ascii=False)
    assert reencoded.encode("utf-8") == event.body
    assert "你".encode() in event.structured()  # UTF-8, not \u escapes


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
        # Credentials under names no word list would guess: only known headers are kept.
        ({"X-Api-Key": "k", "x-apikey": "k", "X-Access-Key-Id": "AKID"}, {}),
        ({"Referer": "https://h/?q-signature=s", "X-Forwarded-For": "1.2.3.4"}, {}),
        (
            {
                "x-cos-server-side-encryption-customer-key": "a2V5",
                "x-cos-server-side-encryption": "AES256",
            },
            {"x-cos-server-side-encryption": "AES256"},
        ),
        (
            {"x-cos-meta-session-token": "t", "x-cos-meta-api-key": "k", "X-COS-META-Author": "me"},
            {"X-COS-META-Author": "me"},
        ),
        (
            {"User-Agent": "cos-go-sdk", "CONTENT-MD5": "m"},
            {"User-Agent": "cos-go-sdk", "CONTENT-MD5": "m"},
        ),
    ],
)
def test_request_headers_are_allow_listed(headers, kept):
    record = {"cos": {}, "event": {"requestParameters": {"requestHeaders": headers}}}
    scrubbed = cos_event.scrub(record)
    assert scrubbed["event"]["requestParameters"]["requestHeaders"] == kept
    assert record["event"]["requestParameters"]["requestHeaders"] == headers  # input untouched


@pytest.mark.parametrize(
    ("parameters", "kept"),
    [
        (
            {"requestSourceIP": "203.0.113.7", "Authorization": "q-sign", "accessToken": "t"},
            {"requestSourceIP": "203.0.113.7"},
        ),
        ({"x-cos-security-token": "t", "requestQuery": "q-signature=s&q-ak=AKID"}, {}),
        ({"requestHeaders": "Authorization: q-sign"}, {}),  # not a header map: nothing to keep
    ],
)
def test_request_parameters_keep_only_the_source_ip_and_allowed_headers(parameters, kept):
    record = {"cos": {}, "event": {"requestParameters": parameters}}
    assert cos_event.scrub(record)["event"]["requestParameters"] == kept


@pytest.mark.parametrize(
    ("url", "scrubbed"),
    [
        (
            "http://b-1.cos.ap-chengdu.myqcloud.com/testfile",
            "http://b-1.cos.ap-chengdu.myqcloud.com/testfile",
        ),
        (
            "https://b-1.cos.ap-shanghai.myqcloud.com/a%20b%E4%BD%A0.jpg"
            "?q-sign-algorithm=sha1&q-ak=AKIDEXAMPLE&q-sign-time=1;2&q-key-time=1;2"
            "&q-header-list=host&q-url-param-list=&q-signature=0000",
            "https://b-1.cos.ap-shanghai.myqcloud.com/a%20b%E4%BD%A0.jpg",
        ),
        (
            "https://b-1.cos.ap-shanghai.myqcloud.com/k?versionId=MTg0&x-cos-security-token=sts",
            "https://b-1.cos.ap-shanghai.myqcloud.com/k?versionId=MTg0",
        ),
        (
            "HTTPS://user:pass@b-1.cos.x.myqcloud.com/k#access_token=t",
            "HTTPS://b-1.cos.x.myqcloud.com/k",
        ),
        ("https://h/k?sign=abc&t=1&token=x", "https://h/k"),
        ("https://h", "https://h"),
    ],
)
def test_urls_lose_signatures_tokens_and_user_info(url, scrubbed):
    record = {"cos": {"cosObject": {"url": url, "meta": {"x-cos-meta-link": url}}}, "event": {}}
    cos_object = cos_event.scrub(record)["cos"]["cosObject"]
    assert cos_object["url"] == scrubbed
    assert cos_object["meta"]["x-cos-meta-link"] == scrubbed  # any URL in the record, not one field


def test_object_metadata_keeps_everything_but_credentials():
    meta = {
        "Content-Type": "image/jpeg",
        "ETag": '"0d73"',
        "x-cos-request-id": "NjI1",
        "x-cos-storage-class": "Standard",
        "x-cos-meta-author": "me",
        "x-cos-meta-mykey": "myvalue",
        "x-cos-version-id": "MTg0",
        "x-cos-security-token": "sts-token",
        "x-cos-meta-session-token": "t",
        "X-Api-Key": "k",
    }
    record = {"cos": {"cosObject": {"meta": meta}}, "event": {}}
    kept = cos_event.scrub(record)["cos"]["cosObject"]["meta"]
    assert kept == {
        k: v
        for k, v in meta.items()
        if k not in ("x-cos-security-token", "x-cos-meta-session-token", "X-Api-Key")
    }


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("Authorization", True),
        ("X-Api-Key", True),
        ("apikey", True),
        ("AccessKeyId", True),
        ("accesskeyid", True),
        ("SecretId", True),
        ("x-cos-security-token", True),
        ("accessToken", True),
        ("X-Amz-Credential", True),
        ("q-signature", True),
        ("q-ak", True),
        ("q-sign-time", True),
        ("Set-Cookie", True),
        ("sessionid", True),
        ("password", True),
        ("x-cos-server-side-encryption-customer-key", True),
        ("key", False),
        ("x-cos-meta-mykey", False),
        ("x-cos-meta-author", False),
        ("ETag", False),
        ("cosNotificationId", False),
        ("x-cos-request-id", False),
        ("requestSourceIP", False),
        ("s3Region", False),
        ("eventSource", False),
        ("x-cos-storage-class", False),
    ],
)
def test_credential_names(name, credential):
    assert cos_event.looks_like_credential(name) is credential


SECRET_PLACES = {
    "Authorization header": ("event", "requestParameters", "requestHeaders", "Authorization"),
    "X-Api-Key header": ("event", "requestParameters", "requestHeaders", "X-Api-Key"),
    "Referer with a signature": ("event", "requestParameters", "requestHeaders", "Referer"),
    "token under requestParameters": ("event", "requestParameters", "x-cos-security-token"),
    "unknown member of requestParameters": ("event", "requestParameters", "requestQuery"),
    "token under meta": ("cos", "cosObject", "meta", "x-cos-security-token"),
    "credential member anywhere": ("event", "accessToken"),
}


@pytest.mark.parametrize("place", sorted(SECRET_PLACES))
def test_a_credential_in_any_place_is_not_sent_and_does_not_change_the_id(place):
    record = load("cos_notification_put.json")["Records"][0]
    base = cos_event.event_from_record(record, "fn", NOW)

    def with_secret(secret):
        changed = copy.deepcopy(record)
        *parents, name = SECRET_PLACES[place]
        target = changed
        for parent in parents:
            target = target.setdefault(parent, {})
        target[name] = f"https://h/x?q-signature={secret}" if name == "Referer" else secret
        return cos_event.event_from_record(changed, "fn", NOW)

    first, second = with_secret("SECRET-ONE"), with_secret("SECRET-TWO")
    assert first.id == second.id == base.id
    assert first.body == base.body
    assert b"SECRET" not in first.structured()


def test_signed_url_is_not_sent_and_does_not_change_the_id():
    record = load("cos_notification_put.json")["Records"][0]
    signed = copy.deepcopy(record)
    signed["cos"]["cosObject"]["url"] += (
        "?q-ak=AKIDSECRET&q-signature=SECRET&x-cos-security-token=SECRET"
    )
    event = cos_event.event_from_record(signed, "fn", NOW)
    assert event.id == cos_event.event_from_record(record, "fn", NOW).id
    assert b"SECRET" not in event.body


@pytest.mark.parametrize(
    ("notification", "message"),
    [
        (None, "no 'Records'"),
        ([], "no 'Records'"),
        ({"records": []}, "no 'Records'"),
        ({"Records": []}, "non-empty list"),
        ({"Records": {"cos": {}}}, "non-empty list"),
    ],
)
def test_notifications_without_records_are_rejected_as_a_whole(notification, message):
    with pytest.raises(NotACosNotification, match=message):
        cos_event.convert(notification, "fn", NOW)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("x", "not an object"),
        ({"cos": {}}, "no 'event' object"),
        ({"event": {}}, "no 'cos' object"),
        ({"cos": "x", "event": {}}, "no 'cos' object"),
        ({"cos": {}, "event": {"eventTime": "yesterday"}}, "invalid eventTime"),
        pytest.param(
            {"cos": {}, "event": {"eventTime": 10**5000}}, "invalid eventTime", id="10**5000"
        ),
        pytest.param(
            {"cos": {"size": 10**5000}, "event": {}}, "cos.size holds an integer", id="size"
        ),
        ({"cos": {"cosObject": {"key": "/1/b/\udc80"}}, "event": {}}, "cos.cosObject.key"),
    ],
)
def test_one_bad_record_is_rejected_and_the_others_still_become_events(bad, reason):
    good = three_records()
    conversion = cos_event.convert({"Records": [good[0], bad, good[1], good[2]]}, "fn", NOW)
    assert [e.id for e in conversion.events] == [
        cos_event.event_from_record(r, "fn", NOW).id for r in good
    ]
    [rejected] = conversion.rejected
    assert rejected.index == 1 and reason in rejected.reason
    assert str(rejected).startswith("record 1: ")
    assert (conversion.total, conversion.duplicates) == (4, 0)
    # The strict form used by tools names the same record.
    with pytest.raises(NotACosNotification, match=r"^record 1: "):
        events({"Records": [good[0], bad]})


def three_records() -> list[dict]:
    base = load("cos_notification_seed.json")["Records"][0]
    records = []
    for n in range(3):
        record = copy.deepcopy(base)
        record["cos"]["cosObject"]["key"] = f"/1253970026/testpic/file-{n}"
        record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = f"req-{n}"
        records.append(record)
    return records


TIME_CASES = [
    (1545205770, "2018-12-19T07:49:30Z"),
    # Milliseconds, as some COS samples and other Tencent events write them.
    (1545205770123, "2018-12-19T07:49:30.123Z"),
    ("1545205770123", "2018-12-19T07:49:30.123Z"),
    (1545205770123.5, "2018-12-19T07:49:30.1235Z"),
    (99_999_999_999, "5138-11-16T09:46:39Z"),  # just below 1e11: still seconds
    (100_000_000_000, "1973-03-03T09:46:40Z"),  # 1e11: milliseconds from here
    ("  1545205770 ", "2018-12-19T07:49:30Z"),
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
