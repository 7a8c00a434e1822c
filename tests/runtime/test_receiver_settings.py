"""Settings helper: typed values, defaults, one-line errors that never echo values, exit code 2."""

from __future__ import annotations

import io
import json
import logging

import pytest

from runtime.receiver.logs import JsonFormatter, configure_logging, log_fields
from runtime.receiver.settings import (
    MIB,
    EnvReader,
    ServerSettings,
    SettingError,
    cgroup_memory_limit,
    in_flight_budget,
    load_or_exit,
    read_server_settings,
)


def no_cgroup():
    return None


def test_defaults():
    assert read_server_settings(EnvReader({}), cgroup_limit=no_cgroup) == ServerSettings(
        port=8080,
        max_body_bytes=16 * 1024 * 1024,
        drain_timeout_seconds=20.0,
        max_in_flight=64,
        log_level="INFO",
        host="0.0.0.0",
        header_timeout_seconds=10.0,
        body_timeout_seconds=10.0,
        memory_limit_bytes=256 * MIB,
        in_flight_bytes=(256 - 96) * MIB // 3,
    )


@pytest.mark.parametrize(
    ("environ", "cgroup", "limit"),
    [
        ({"MEMORY_LIMIT_BYTES": str(512 * MIB)}, 128 * MIB, 512 * MIB),  # the component's word
        ({}, 384 * MIB, 384 * MIB),  # else the container's cgroup
        ({}, None, 256 * MIB),  # else the default pod limit
    ],
)
def test_the_in_flight_budget_follows_the_memory_limit(environ, cgroup, limit):
    settings = read_server_settings(EnvReader(environ), cgroup_limit=lambda: cgroup)
    assert settings.memory_limit_bytes == limit
    assert settings.in_flight_bytes == in_flight_budget(limit) == (limit - 96 * MIB) // 3
    # What the budget admits, plus the reserve, stays inside the limit.
    assert 3 * settings.in_flight_bytes + 96 * MIB <= limit


def test_a_body_limit_the_memory_limit_cannot_hold_is_refused_at_start():
    env = EnvReader({"MEMORY_LIMIT_BYTES": str(128 * MIB)})
    with pytest.raises(SettingError) as caught:
        read_server_settings(env, cgroup_limit=no_cgroup)  # 16 MiB > (128 - 96) / 3 MiB
    assert caught.value.name == "MAX_BODY_BYTES"
    small = read_server_settings(env, max_body_bytes=MIB, cgroup_limit=no_cgroup)
    assert small.max_body_bytes == MIB


@pytest.mark.parametrize(
    ("v2", "v1", "expected"),
    [
        ("268435456\n", None, 268435456),
        ("max\n", "1073741824", None),  # v2 says unlimited: v1 is not consulted
        (None, "536870912\n", 536870912),
        (None, "9223372036854771712", None),  # v1's "unlimited"
        (None, None, None),
        ("garbage", None, None),
    ],
)
def test_cgroup_memory_limit(tmp_path, v2, v1, expected):
    paths = []
    for name, text in (("memory.max", v2), ("memory.limit_in_bytes", v1)):
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        paths.append(str(path))
    assert cgroup_memory_limit(tuple(paths)) == expected


def test_host_and_deadlines():
    settings = read_server_settings(
        EnvReader(
            {"HOST": "127.0.0.1", "HEADER_TIMEOUT_SECONDS": "2", "BODY_TIMEOUT_SECONDS": "3.5"}
        ),
        cgroup_limit=no_cgroup,
    )
    assert settings.host == "127.0.0.1"
    assert (settings.header_timeout_seconds, settings.body_timeout_seconds) == (2.0, 3.5)


def test_values_are_parsed_and_empty_means_unset():
    env = EnvReader(
        {
            "PORT": " 9000 ",
            "MAX_BODY_BYTES": "10",
            "DRAIN_TIMEOUT_SECONDS": "2.5",
            "MAX_IN_FLIGHT": "",
            "LOG_LEVEL": "debug",
        }
    )
    assert read_server_settings(env, cgroup_limit=no_cgroup) == ServerSettings(
        9000, 10, 2.5, 64, "DEBUG"
    )


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MAX_BODY_BYTES": "0"}, "MAX_BODY_BYTES"),
        ({"MAX_BODY_BYTES": "1.5"}, "MAX_BODY_BYTES"),
        ({"DRAIN_TIMEOUT_SECONDS": "-1"}, "DRAIN_TIMEOUT_SECONDS"),
        ({"DRAIN_TIMEOUT_SECONDS": "nan"}, "DRAIN_TIMEOUT_SECONDS"),
        ({"MAX_IN_FLIGHT": "0"}, "MAX_IN_FLIGHT"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"MEMORY_LIMIT_BYTES": "256Mi"}, "MEMORY_LIMIT_BYTES"),
        ({"MEMORY_LIMIT_BYTES": "0"}, "MEMORY_LIMIT_BYTES"),
        ({"HEADER_TIMEOUT_SECONDS": "0"}, "HEADER_TIMEOUT_SECONDS"),
        ({"BODY_TIMEOUT_SECONDS": "inf"}, "BODY_TIMEOUT_SECONDS"),
    ],
)
def test_invalid_values_name_the_setting(environ, name):
    with pytest.raises(SettingError) as caught:
        read_server_settings(EnvReader(environ))
    assert caught.value.name == name


def test_required_setting():
    with pytest.raises(SettingError, match="K_SINK: is required"):
        EnvReader({"K_SINK": "  "}).required("K_SINK")


def test_load_or_exit_prints_one_line_without_the_value_and_exits_2(capsys):
    with pytest.raises(SystemExit) as caught:
        load_or_exit(read_server_settings, {"PORT": "hunter2"}, program="demo")
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err == "demo: invalid setting PORT: must be an integer\n"
    assert "hunter2" not in err


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_json_log_lines_carry_fields_and_hide_exception_messages(restore_logging):
    stream = io.StringIO()
    configure_logging("INFO", stream)
    logger = logging.getLogger("runtime.test")
    log_fields(logger, logging.INFO, "stored", id="e-1", status=200)
    try:
        raise ValueError("Authorization: OSS ak:signature")
    except ValueError:
        logger.exception("failed")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "stored" and first["id"] == "e-1" and first["status"] == 200
    assert second["exception"] == "ValueError"
    assert "signature" not in stream.getvalue()
    assert logging.getLogger("oss2").getEffectiveLevel() >= logging.WARNING
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
