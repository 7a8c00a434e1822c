"""Settings of the COS source function: destinations, Vanus URL forms, signing secret, knobs."""

import base64

import pytest

from runtime.tencent_cos_source.cos_settings import SettingsError, load_settings

SECRET_KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(SECRET_KEY).decode()


@pytest.mark.parametrize(
    ("environ", "url"),
    [
        ({"K_SINK": "http://broker.ns.svc/"}, "http://broker.ns.svc/"),
        (
            {"K_SINK": "https://relay.example.com:8443/x?y=1"},
            "https://relay.example.com:8443/x?y=1",
        ),
        (
            {"EVENT_GATEWAY": "35.87.170.130:8081", "VANUS_EVENTBUS": "xxx"},
            "http://35.87.170.130:8081/gateway/xxx",
        ),
        (
            {"EVENT_GATEWAY": "http://gw:8081/", "VANUS_EVENTBUS": "bus"},
            "http://gw:8081/gateway/bus",
        ),
        (
            {"EVENT_GATEWAY": "https://gw.example.com", "VANUS_EVENTBUS": "bus"},
            "https://gw.example.com/gateway/bus",
        ),
        (
            {"EVENT_GATEWAY": "gw:8081", "VANUS_EVENTBUS": "bus", "VANUS_API": "gateway"},
            "http://gw:8081/gateway/bus",
        ),
        (
            {"EVENT_GATEWAY": "gw:8081", "VANUS_EVENTBUS": "bus", "VANUS_API": "namespaces"},
            "http://gw:8081/namespaces/default/eventbus/bus/events",
        ),
        (
            {
                "EVENT_GATEWAY": "https://gw",
                "VANUS_EVENTBUS": "my bus",
                "VANUS_API": "Namespaces",
                "VANUS_NAMESPACE": "team-a",
            },
            "https://gw/namespaces/team-a/eventbus/my%20bus/events",
        ),
    ],
)
def test_destination_url_forms(environ, url):
    assert load_settings(environ).sink_url == url


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "no destination"),
        ({"K_SINK": "http://a/", "EVENT_GATEWAY": "gw:1"}, "not both"),
        ({"EVENT_GATEWAY": "gw:1"}, "VANUS_EVENTBUS is required"),
        ({"VANUS_EVENTBUS": "bus"}, "EVENT_GATEWAY is required"),
        ({"K_SINK": "ftp://a/"}, "K_SINK must be an http"),
        ({"K_SINK": "broker.svc"}, "K_SINK must be an http"),
        ({"K_SINK": "http://a:notaport/"}, "K_SINK is not a valid URL"),
        ({"K_SINK": "http://user:pw@a/"}, "K_SINK must not carry credentials"),
        ({"EVENT_GATEWAY": "gw:1", "VANUS_EVENTBUS": "b", "VANUS_API": "v2"}, "VANUS_API must be"),
        ({"K_SINK": "http://a/", "DEBUG_MODE": "maybe"}, "DEBUG_MODE must be true or false"),
        (
            {"K_SINK": "http://a/", "DELIVERY_CONCURRENCY": "0"},
            "DELIVERY_CONCURRENCY must be positive",
        ),
        ({"K_SINK": "http://a/", "DELIVERY_CONCURRENCY": "2.5"}, "must be an integer"),
        ({"K_SINK": "http://a/", "DELIVERY_CONCURRENCY": "1000"}, "at most 256"),
        ({"K_SINK": "http://a/", "DELIVERY_TIMEOUT_SECONDS": "nan"}, "positive and finite"),
        ({"K_SINK": "http://a/", "DELIVERY_RETRY_BUDGET_SECONDS": "-1"}, "positive"),
        ({"K_SINK": "http://a/", "DELIVERY_BACKOFF_SECONDS": "soon"}, "must be a number"),
    ],
)
def test_invalid_settings_name_the_variable(environ, message):
    with pytest.raises(SettingsError, match=message):
        load_settings(environ)


def test_defaults():
    settings = load_settings({"K_SINK": "http://a/"})
    assert settings.function_name is None
    assert settings.debug is False
    assert settings.signing_key is None
    assert (settings.timeout, settings.concurrency, settings.retry_budget) == (10.0, 16, 60.0)
    assert (settings.backoff_initial, settings.backoff_max) == (0.2, 5.0)


def test_function_name_falls_back_to_scf_variable():
    assert load_settings({"K_SINK": "http://a/", "SCF_FUNCTIONNAME": "f"}).function_name == "f"
    environ = {"K_SINK": "http://a/", "SCF_FUNCTIONNAME": "f", "FUNCTION_NAME": "g"}
    assert load_settings(environ).function_name == "g"


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes"])
def test_debug_mode_true(value):
    assert load_settings({"K_SINK": "http://a/", "DEBUG_MODE": value}).debug is True


@pytest.mark.parametrize(
    "secret", [SECRET, SECRET.rstrip("="), SECRET.removeprefix("whsec_"), f" {SECRET} "]
)
def test_signing_secret_forms(secret):
    settings = load_settings({"K_SINK": "http://a/", "SINK_SIGNING_SECRET": secret})
    assert settings.signing_key == SECRET_KEY
    assert SECRET_KEY.hex() not in repr(settings)
    assert secret.strip() not in repr(settings)


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_not*base64!",
        "whsec_c2hvcnQ=",  # valid base64, too short a key
        SECRET[:20] + "=" + SECRET[20:],  # padding in the middle
        SECRET.rstrip("=") + "===",  # more padding than base64 ever has
        SECRET.rstrip("=") + "AB",  # 45 digits: not a length base64 can have
        "whsec_" + "A" * 30 + "-_",  # the URL-safe alphabet is not Standard Webhooks'
        "whsec_=",
    ],
)
def test_bad_signing_secret_is_rejected_without_echoing_it(secret):
    with pytest.raises(SettingsError, match="SINK_SIGNING_SECRET") as raised:
        load_settings({"K_SINK": "http://a/", "SINK_SIGNING_SECRET": secret})
    assert secret not in str(raised.value)
    assert secret.removeprefix("whsec_") not in str(raised.value)
