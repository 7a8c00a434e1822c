"""Settings helper: typed values, defaults, one-line errors that never echo values, exit code 2."""

from __future__ import annotations

import io
import json
import logging

import pytest

from runtime.receiver.logs import JsonFormatter, configure_logging, log_fields
from runtime.receiver.settings import (
    EnvReader,
    ServerSettings,
    SettingError,
    load_or_exit,
    read_server_settings,
)


def test_defaults():
    assert read_server_settings(EnvReader({})) == ServerSettings(
        port=8080,
        max_body_bytes=16 * 1024 * 1024,
        drain_timeout_seconds=20.0,
        max_in_flight=64,
        log_level="INFO",
    )


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
    assert read_server_settings(env) == ServerSettings(9000, 10, 2.5, 64, "DEBUG")


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
