"""The target's settings table: defaults, normalisation, and which variable each error names."""

from __future__ import annotations

import json

import pytest

from runtime.alibaba_oss_target.settings import read_settings, read_startup_settings
from runtime.receiver.settings import EnvReader, ServerSettings, SettingError

REQUIRED = {
    "OSS_ENDPOINT": "oss-cn-hangzhou.aliyuncs.com",
    "OSS_BUCKET": "my-bucket",
    "OSS_ACCESS_KEY_ID": "ak",
    "OSS_ACCESS_KEY_SECRET": "sk-secret",
}


NO_KEY = {"OSS_ACCESS_KEY_ID": None, "OSS_ACCESS_KEY_SECRET": None}
RRSA = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1234567890:role/oss-target",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1234567890:oidc-provider/ack-rrsa-c1",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/ack.alibabacloud.com/rrsa-tokens/token",
}


def read(**env):
    return read_settings(EnvReader({k: v for k, v in {**REQUIRED, **env}.items() if v is not None}))


def test_defaults():
    settings = read()
    assert settings.endpoint == "https://oss-cn-hangzhou.aliyuncs.com"  # no scheme means https
    assert settings.bucket == "my-bucket"
    assert settings.security_token is None and settings.region is None
    assert settings.key_prefix == ""
    assert settings.store == "data"
    assert settings.response_source == "alibabaoss/my-bucket"
    assert settings.max_concurrency == 16
    assert settings.retry_budget_seconds == 10.0
    assert settings.timeout_seconds == 10.0
    assert settings.server == ServerSettings()


def test_secrets_stay_out_of_repr():
    text = repr(read(OSS_SECURITY_TOKEN="tok-secret", OSS_REGION="cn-hangzhou"))
    assert "sk-secret" not in text and "tok-secret" not in text


@pytest.mark.parametrize(
    ("endpoint", "normalised"),
    [
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("https://oss-cn-hangzhou.aliyuncs.com/", "https://oss-cn-hangzhou.aliyuncs.com"),
        (
            "oss-cn-hangzhou-internal.aliyuncs.com:443",
            "https://oss-cn-hangzhou-internal.aliyuncs.com:443",
        ),
    ],
)
def test_endpoint_normalisation(endpoint, normalised):
    assert read(OSS_ENDPOINT=endpoint).endpoint == normalised


def test_optional_values():
    settings = read(
        OSS_SECURITY_TOKEN="tok",
        OSS_REGION="cn-hangzhou",
        OSS_KEY_PREFIX="events/",
        STORE="EVENT",
        RESPONSE_SOURCE="my/source",
        OSS_MAX_CONCURRENCY="4",
        OSS_RETRY_BUDGET_SECONDS="2.5",
        OSS_HEAD_START_BYTES="0",
        PORT="9090",
    )
    assert (settings.security_token, settings.region, settings.key_prefix) == (
        "tok",
        "cn-hangzhou",
        "events/",
    )
    assert settings.store == "event"
    assert settings.response_source == "my/source"
    assert settings.max_concurrency == 4
    assert settings.retry_budget_seconds == 2.5
    assert settings.head_start_bytes == 0
    assert settings.server.port == 9090
    assert read().head_start_bytes == 1024 * 1024


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"OSS_ENDPOINT": None}, "OSS_ENDPOINT"),
        ({"OSS_ENDPOINT": "ftp://host"}, "OSS_ENDPOINT"),
        ({"OSS_ENDPOINT": "https://host/path"}, "OSS_ENDPOINT"),
        ({"OSS_BUCKET": None}, "OSS_BUCKET"),
        ({"OSS_BUCKET": "My_Bucket"}, "OSS_BUCKET"),
        ({"OSS_BUCKET": "ab"}, "OSS_BUCKET"),
        ({"OSS_BUCKET": "bucket-"}, "OSS_BUCKET"),
        ({"OSS_ACCESS_KEY_ID": None}, "OSS_ACCESS_KEY_ID"),
        ({"OSS_ACCESS_KEY_SECRET": ""}, "OSS_ACCESS_KEY_SECRET"),
        ({"OSS_REGION": "CN Hangzhou"}, "OSS_REGION"),
        ({"OSS_KEY_PREFIX": "/abs/"}, "OSS_KEY_PREFIX"),
        ({"OSS_KEY_PREFIX": "x" * 1023}, "OSS_KEY_PREFIX"),
        ({"STORE": "all"}, "STORE"),
        ({"OSS_MAX_CONCURRENCY": "0"}, "OSS_MAX_CONCURRENCY"),
        ({"OSS_RETRY_BUDGET_SECONDS": "-1"}, "OSS_RETRY_BUDGET_SECONDS"),
        ({"OSS_TIMEOUT_SECONDS": "0"}, "OSS_TIMEOUT_SECONDS"),
        ({"OSS_HEAD_START_BYTES": "-1"}, "OSS_HEAD_START_BYTES"),
        ({"OSS_HEAD_START_BYTES": "1MiB"}, "OSS_HEAD_START_BYTES"),
        ({"MAX_BODY_BYTES": "lots"}, "MAX_BODY_BYTES"),
        ({"DRAIN_TIMEOUT_SECONDS": "x"}, "DRAIN_TIMEOUT_SECONDS"),
        ({"OSS_SECURITY_TOKEN": "tok"}, "OSS_REGION"),  # STS is signed with V4 only
        ({"OSS_CREDENTIALS_FILE": "/var/run/oss/credentials.json"}, "OSS_ACCESS_KEY_ID"),
        ({**NO_KEY, "OSS_CREDENTIALS_FILE": "/f.json"}, "OSS_REGION"),
        ({**NO_KEY, **RRSA, "OSS_CREDENTIALS_FILE": "/f.json"}, "OSS_CREDENTIALS_FILE"),
        ({**NO_KEY, **RRSA}, "OSS_REGION"),
        ({**NO_KEY, **RRSA, "OSS_REGION": "cn-hangzhou", "ALIBABA_CLOUD_OIDC_TOKEN_FILE": None},
         "ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
        ({**NO_KEY, **RRSA, "OSS_REGION": "cn-hangzhou", "ALIBABA_CLOUD_STS_ENDPOINT": "a b"},
         "ALIBABA_CLOUD_STS_ENDPOINT"),
        ({**NO_KEY, **RRSA, "OSS_REGION": "cn-hangzhou", "OSS_CREDENTIALS_DURATION_SECONDS": "600"},
         "OSS_CREDENTIALS_DURATION_SECONDS"),
        # a fixed STS token with a file or RRSA is a second source, not silently ignored
        ({**NO_KEY, "OSS_REGION": "cn-hangzhou", "OSS_CREDENTIALS_FILE": "/f.json",
          "OSS_SECURITY_TOKEN": "tok"}, "OSS_SECURITY_TOKEN"),
        ({**NO_KEY, **RRSA, "OSS_REGION": "cn-hangzhou", "OSS_SECURITY_TOKEN": "tok"},
         "OSS_SECURITY_TOKEN"),
        ({**NO_KEY, **RRSA, "OSS_REGION": "cn-hangzhou", "ALIBABA_CLOUD_ROLE_SESSION_NAME": "a b"},
         "ALIBABA_CLOUD_ROLE_SESSION_NAME"),
        ({**NO_KEY, **RRSA, "OSS_REGION": "cn-hangzhou", "ALIBABA_CLOUD_ROLE_SESSION_NAME": "a"},
         "ALIBABA_CLOUD_ROLE_SESSION_NAME"),
    ],
)  # fmt: skip
def test_invalid_settings_name_the_variable(env, name):
    with pytest.raises(SettingError) as caught:
        read(**env)
    assert caught.value.name == name
    assert "sk-secret" not in str(caught.value)


def test_each_credentials_source():
    static = read(OSS_SECURITY_TOKEN="tok", OSS_REGION="cn-hangzhou")
    assert static.credentials_source == "accessKey" and static.security_token == "tok"
    assert static.rrsa is None and static.credentials_file is None
    from_file = read(**NO_KEY, OSS_REGION="cn-hangzhou", OSS_CREDENTIALS_FILE="/run/c.json")
    assert from_file.credentials_source == "stsFile"
    assert from_file.credentials_file == "/run/c.json" and from_file.access_key_id == ""
    rrsa = read(
        **NO_KEY,
        **RRSA,
        OSS_REGION="cn-hangzhou",
        ALIBABA_CLOUD_ROLE_SESSION_NAME="my-target",
        ALIBABA_CLOUD_STS_ENDPOINT="http://127.0.0.1:9000/",
    )
    assert rrsa.credentials_source == "rrsa"
    assert rrsa.rrsa.role_arn == RRSA["ALIBABA_CLOUD_ROLE_ARN"]
    assert rrsa.rrsa.oidc_token_file == RRSA["ALIBABA_CLOUD_OIDC_TOKEN_FILE"]
    assert rrsa.rrsa.role_session_name == "my-target"
    assert rrsa.rrsa.sts_endpoint == "http://127.0.0.1:9000"
    assert rrsa.rrsa.duration_seconds == 3600
    assert rrsa.access_key_id == "" and rrsa.access_key_secret == ""


@pytest.mark.parametrize("bucket", ["acme--events", "a-b", "0ab", "x" * 63])
def test_bucket_names_follow_the_components_rule(bucket):
    # One rule (runtime.alibaba_oss_target.bucket_name) for the stack check and the pod: a name the
    # component accepts must not make the pod exit 2.
    from runtime.alibaba_oss_target.bucket_name import bucket_name_problem

    assert bucket_name_problem(bucket) is None
    assert read(OSS_BUCKET=bucket).bucket == bucket


def startup(**env):
    """What the process reads: settings plus the start-up check of the credentials' files."""
    environ = {**REQUIRED, **NO_KEY, "OSS_REGION": "cn-hangzhou", **env}
    return read_startup_settings(EnvReader({k: v for k, v in environ.items() if v is not None}))


STS_DOCUMENT = {
    "AccessKeyId": "STS.a",
    "AccessKeySecret": "sts-secret-value",
    "SecurityToken": "tok",
    "Expiration": "2030-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    "content",
    [
        None,  # missing
        "",
        "{",
        json.dumps({**STS_DOCUMENT, "Expiration": "9999-12-31T23:59:59-01:00"}),
        json.dumps({**STS_DOCUMENT, "Expiration": "0001-01-01T00:00:00+01:00"}),
        json.dumps({**STS_DOCUMENT, "Expiration": "2026-W48-1"}),
        '{"AccessKeyId": "a", "AccessKeySecret": "sts-secret-value", "x": ' + "[" * 20000 + "}",
        "DIRECTORY",
    ],
)
def test_a_bad_sts_file_is_a_start_up_error(tmp_path, content):
    path = tmp_path / "credentials.json"
    if content == "DIRECTORY":
        path = tmp_path
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SettingError) as caught:
        startup(OSS_CREDENTIALS_FILE=str(path))
    assert caught.value.name == "OSS_CREDENTIALS_FILE"
    assert "sts-secret-value" not in str(caught.value)


def test_an_sts_file_past_its_expiration_starts_not_ready_rather_than_exiting(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({**STS_DOCUMENT, "Expiration": "2020-01-01T00:00:00Z"}))
    assert startup(OSS_CREDENTIALS_FILE=str(path)).credentials_file == str(path)


@pytest.mark.parametrize("token", [None, "", "DIRECTORY"])
def test_a_missing_or_empty_oidc_token_file_is_a_start_up_error(tmp_path, token):
    path = tmp_path / "token"
    if token == "DIRECTORY":
        path = tmp_path
    elif token is not None:
        path.write_text(token)
    with pytest.raises(SettingError) as caught:
        startup(**{**RRSA, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(path)})
    assert caught.value.name == "ALIBABA_CLOUD_OIDC_TOKEN_FILE"
    path = tmp_path / "token-ok"
    path.write_text("eyJ.token")
    settings = startup(**{**RRSA, "ALIBABA_CLOUD_OIDC_TOKEN_FILE": str(path)})
    assert settings.rrsa.oidc_token_file == str(path)
