"""Key templates (OSS_KEY_TEMPLATE), table-first: each placeholder, strftime fields, escaping,
missing attributes, templates refused at start-up; and the NDJSON lines of rolled objects."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from runtime.alibaba_oss_target.batching import EXTENSIONS, object_time
from runtime.alibaba_oss_target.core import (
    PLAIN_ID,
    Line,
    MissingAttributeError,
    plan_lines,
    plan_write,
    plan_writes,
    render_key,
)
from runtime.alibaba_oss_target.key_rules import ROLLED_NAME_BYTES
from runtime.alibaba_oss_target.keys import InvalidKey
from runtime.alibaba_oss_target.settings import read_settings
from runtime.alibaba_oss_target.templates import (
    InvalidTemplate,
    check_mode,
    encode_segment,
    parse_template,
)
from runtime.receiver.errors import InvalidEvent
from runtime.receiver.events import parse_events
from runtime.receiver.settings import EnvReader, SettingError
from tests.runtime.test_oss_target_settings import REQUIRED

RECEIVED_AT = datetime(2030, 6, 7, 8, 9, 10, tzinfo=timezone.utc)


def event(**fields):
    document = {
        "specversion": "1.0",
        "type": "com.example.order.created",
        "source": "/shop/eu",
        "id": "A-1",
        "time": "2026-11-29T23:30:45.5+01:00",
        "subject": "order 42",
        "region": "eu-1",
        "priority": 7,
        "urgent": True,
        **fields,
    }
    document = {name: value for name, value in document.items() if value is not None}
    body = json.dumps(document).encode()
    return parse_events([("content-type", "application/cloudevents+json")], body)[1][0]


def render(template, received=None, prefix=""):
    return render_key(parse_template(template, prefix), received or event(), RECEIVED_AT)


@pytest.mark.parametrize(
    ("template", "key"),
    [
        ("{id}", "A-1"),
        ("{type}/{id}", "com.example.order.created/A-1"),
        # '/' of a value is encoded: a value never adds a folder.
        ("{source}/{id}", "%2Fshop%2Feu/A-1"),
        ("{subject}", "order%2042"),
        ("{region}/{id}", "eu-1/A-1"),  # an extension
        ("{priority}-{urgent}", "7-true"),  # Integer and Boolean: canonical strings
        ("{time}", "2026-11-29T23%3A30%3A45.5%2B01%3A00"),  # the attribute as sent, encoded
        # strftime fields: the event's time in UTC (23:30 at +01:00 is 22:30 UTC).
        ("dt=%F/{id}", "dt=2026-11-29/A-1"),
        ("%Y/%m/%d/%H/%M/%S", "2026/11/29/22/30/45"),
        ("%j %y %G-W%V-%u %w", "333 26 2026-W48-7 0"),
        ("%T", "22:30:45"),
        ("%s", str(int(datetime(2026, 11, 29, 22, 30, 45, tzinfo=timezone.utc).timestamp()))),
        ("100%%/{id}", "100%/A-1"),
        ("year=%Y/{type}/{id}.json", "year=2026/com.example.order.created/A-1.json"),
    ],
)
def test_each_placeholder_renders(template, key):
    assert render(template) == key


def test_without_time_the_time_of_receipt_is_used():
    assert render("dt=%F/%H", event(time=None)) == "dt=2030-06-07/08"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("plain-value_1.0", "plain-value_1.0"),
        ("a/b", "a%2Fb"),
        ("a\\b", "a%5Cb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("a..b", "a..b"),  # not a segment of its own: harmless
        ("50%", "50%25"),
        ("é", "%C3%A9"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("\u2028", "%E2%80%A8"),
    ],
)
def test_values_are_percent_encoded_outside_the_safe_set(value, encoded):
    assert encode_segment(value) == encoded


@pytest.mark.parametrize("subject", ["..", ".", "../../etc", "/abs", "x/../y"])
def test_a_value_can_never_add_a_folder_or_dot_segment(subject):
    key = render("{type}/{subject}/{id}", event(subject=subject))
    assert key.count("/") == 2
    assert not {".", ".."} & set(key.split("/"))


@pytest.mark.parametrize("missing", ["subject", "region"])
def test_a_missing_attribute_is_a_400_naming_it(missing):
    with pytest.raises(MissingAttributeError, match=f"'{missing}'") as caught:
        render(f"{{type}}/{{{missing}}}/{{id}}", event(**{missing: None}))
    assert caught.value.status == 400 and caught.value.code == "missing-attribute"


def test_an_empty_extension_is_refused_rather_than_an_empty_segment():
    with pytest.raises(MissingAttributeError, match="'region'"):
        render("{region}/{id}", event(region=""))


def test_the_default_template_keeps_the_id_as_sent():
    # `{id}` alone is the behaviour before templates: ids with '/' make folders, as in the seed.
    received = event(id="folder/file.json")
    assert render("{id}", received) == "folder/file.json"
    assert render("x/{id}", received) == "x/folder%2Ffile.json"


def test_same_event_same_key_for_attribute_templates():
    first = plan_write(event(), prefix="p/", store="data", template=parse_template("{type}/{id}"))
    again = plan_write(
        event(),
        prefix="p/",
        store="data",
        template=parse_template("{type}/{id}"),
        received_at=datetime(2040, 1, 1, tzinfo=timezone.utc),
    )
    assert first.key == again.key == "p/com.example.order.created/A-1"


def test_plan_writes_names_the_event_of_a_batch_missing_an_attribute():
    with pytest.raises(MissingAttributeError) as caught:
        plan_writes(
            [event(), event(id="A-2", region=None)],
            prefix="",
            store="data",
            batch=True,
            template=parse_template("{region}/{id}"),
        )
    assert caught.value.index == 1 and "'region'" in caught.value.message


def test_a_rendered_key_still_follows_the_key_rules():
    with pytest.raises(InvalidKey, match="1023"):
        plan_write(
            event(subject="/" * 400), prefix="", store="data", template=parse_template("{subject}")
        )


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("", "empty"),
        ("{Type}", "attribute name"),
        ("{}", "attribute name"),
        ("{ty-pe}", "attribute name"),
        ("{type", "unbalanced"),
        ("type}", "unbalanced"),
        ("%Q/{id}", "'%Q' is not a supported"),
        ("%c", "not a supported"),  # locale-dependent: not allowed
        ("{id}%", "lone '%'"),
        ("/{id}", "must not start"),
        ("a/../{id}", "'..'"),
        ("./{id}", "'.'"),
        ("a\x01/{id}", "control"),
        ("x" * 1100 + "{id}", "1023"),
    ],
)
def test_invalid_templates_are_refused(template, problem):
    with pytest.raises(InvalidTemplate, match=problem):
        parse_template(template)


def test_the_prefix_counts_when_checking_a_template():
    parse_template(".x/{id}")
    with pytest.raises(InvalidTemplate, match=r"'\.\.'"):
        parse_template("./{id}", prefix="a/.")


def test_settings_name_the_template_variable():
    env = {**REQUIRED, "OSS_KEY_TEMPLATE": "{type}/%Q"}
    with pytest.raises(SettingError) as caught:
        read_settings(EnvReader(env))
    assert caught.value.name == "OSS_KEY_TEMPLATE"
    ok = read_settings(EnvReader({**REQUIRED, "OSS_KEY_TEMPLATE": "dt=%F/{id}"}))
    assert ok.key_template.text == "dt=%F/{id}"
    assert read_settings(EnvReader(REQUIRED)).key_template.is_plain_id


def test_an_invalid_template_exits_2_at_start_up():
    env = {**REQUIRED, "OSS_KEY_TEMPLATE": "../{id}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "runtime.alibaba_oss_target"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "OSS_KEY_TEMPLATE" in done.stderr and "Traceback" not in done.stderr


# ---- the lines of rolled objects


def test_lines_are_whole_events_grouped_by_the_key_without_id():
    template = parse_template("dt=%F/{type}/{id}")
    entries = plan_lines(
        [event(), event(id="A-2", type="other"), event()],
        prefix="lake/",
        template=template,
        batch=True,
        received_at=RECEIVED_AT,
    )
    first, second, repeat = entries
    assert isinstance(first, Line) and isinstance(second, Line)
    assert first.group == "lake/dt=2026-11-29/com.example.order.created/"
    assert second.group == "lake/dt=2026-11-29/other/"
    assert repeat == 0  # the same event twice in one request: one line, shared
    assert first.data.endswith(b"\n") and first.data.count(b"\n") == 1
    document = json.loads(first.data)
    assert document["id"] == "A-1" and document["subject"] == "order 42"
    assert document["time"] == "2026-11-29T23:30:45.5+01:00"  # as sent
    assert first.time == datetime(2026, 11, 29, 22, 30, 45, 500000, tzinfo=timezone.utc)


def test_a_line_never_holds_a_raw_newline():
    received = event(data={"text": "a\nb\r\nc\u2028"}, subject="x\u2028y")
    (line,) = plan_lines([received], prefix="", template=parse_template("{id}"), batch=False)
    assert (
        line.data.count(b"\n") == 1 and json.loads(line.data)["data"]["text"] == "a\nb\r\nc\u2028"
    )
    assert len(line.data.decode().splitlines()) == 1  # U+2028 escaped: no reader splits it


def test_lines_refuse_a_missing_attribute_with_the_index():
    with pytest.raises(InvalidEvent) as caught:
        plan_lines(
            [event(), event(id="A-2", region=None)],
            prefix="",
            template=parse_template("{region}/{id}"),
            batch=True,
        )
    assert caught.value.index == 1 and caught.value.code == "missing-attribute"


@pytest.mark.parametrize(
    ("sent", "key"),
    [
        # RFC 3339 times whose UTC leaves Python's datetime range: clamped, never a 500.
        ("0001-01-01T00:00:00+01:00", "0001-01-01/00:00:00"),
        ("9999-12-31T23:59:59-01:00", "9999-12-31/23:59:59"),
        # Year 0000 (valid RFC 3339): the event's own time, stable across redeliveries.
        ("0000-06-01T00:00:00Z", "0001-01-01/00:00:00"),
        ("0000-12-31T23:30:00-01:00", "0001-01-01/00:30:00"),
        ("0000-12-31T23:59:60Z", "0001-01-01/00:00:00"),
    ],
)
def test_times_outside_datetimes_range_are_clamped_to_a_stable_key(sent, key):
    assert render("%F/%T", event(time=sent)) == key
    later = datetime(2031, 1, 1, tzinfo=timezone.utc)
    assert render_key(parse_template("%F/%T"), event(time=sent), later) == key


@pytest.mark.parametrize(
    "sent", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0000-06-01T00:00:00Z"]
)
def test_extreme_times_place_lines_with_a_four_digit_object_time(sent):
    (line,) = plan_lines([event(time=sent)], prefix="", template=PLAIN_ID, batch=False)
    name = object_time(line.time)
    assert len(name) == len(object_time(RECEIVED_AT)) and name[:4] in {"0001", "9999"}


@pytest.mark.parametrize(
    ("template", "batched", "problem"),
    [
        ("{type}", False, "must contain {id}"),
        ("dt=%F/{type}.json", False, "must contain {id}"),
        ("{id}/events", True, "must not start"),  # batching removes {id}: '/events' + name
        (".{id}/x", True, r"'\.'"),
        ("x" * 980 + "/{id}", True, "1023"),  # the object name (51 bytes) goes past 1023
    ],
)
def test_templates_are_checked_in_the_mode_they_run_in(template, batched, problem):
    with pytest.raises(InvalidTemplate, match=problem):
        check_mode(parse_template(template), batched=batched)
    env = {**REQUIRED, "OSS_KEY_TEMPLATE": template, "BATCH_MAX_EVENTS": "10" if batched else "0"}
    with pytest.raises(SettingError) as caught:
        read_settings(EnvReader(env))
    assert caught.value.name == "OSS_KEY_TEMPLATE"


@pytest.mark.parametrize(
    ("template", "batched"),
    [("{id}", False), ("{id}", True), ("dt=%F/{type}/", True), ("{type}/{id}", True)],
)
def test_templates_valid_in_their_mode_pass(template, batched):
    check_mode(parse_template(template), batched=batched)


def test_data_is_not_an_attribute_name():
    with pytest.raises(InvalidTemplate, match="payload"):
        parse_template("{data}/{id}")


def test_a_template_without_id_exits_2_when_each_event_is_its_own_object():
    env = {**REQUIRED, "OSS_KEY_TEMPLATE": "{type}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "runtime.alibaba_oss_target"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "{id}" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_the_rolled_name_size_matches_the_names_the_batcher_makes(compression):
    name = object_time(RECEIVED_AT) + "-" + "0" * 16 + EXTENSIONS[compression]
    assert len(name) == ROLLED_NAME_BYTES[compression]


def test_a_rolled_key_is_checked_whole_group_name_and_extension():
    # The group alone (and group + "0") fits in 1023 bytes, the final key would not: 400 now,
    # not a 503 on every retry.
    group = "a" * (1023 - 30)
    with pytest.raises(InvalidKey, match="1023") as caught:
        plan_lines(
            [event(subject=group)],
            prefix="",
            template=parse_template("{subject}/{id}"),
            batch=False,
            name_bytes=ROLLED_NAME_BYTES["gzip"],
        )
    assert "template" in caught.value.message
    plan_lines(
        [event(subject="a" * (1023 - 1 - 51))],
        prefix="",
        template=parse_template("{subject}/{id}"),
        batch=False,
        name_bytes=ROLLED_NAME_BYTES["zstd"],
    )


def test_a_key_error_names_the_template_not_the_id_when_a_template_is_used():
    with pytest.raises(InvalidKey, match=r"prefix \+ key template"):
        plan_write(
            event(subject="/" * 400), prefix="", store="data", template=parse_template("{subject}")
        )
