"""The credentials chain: sources (static, STS file, RRSA through alibabacloud-credentials against
the emulator's STS), refresh before expiry, and authentication health (readiness, one log line)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from datetime import datetime, timezone

import pytest

from runtime.alibaba_oss_target.credentials import (
    FAILURES_BEFORE_UNREADY,
    CredentialsUnavailable,
    OidcSource,
    RefreshingCredentials,
    StaticSource,
    StsFileSource,
    parse_sts_document,
)
from runtime.receiver import configure_logging
from tests.fakes.objectstore import ObjectStoreEmulator

ROLE = "acs:ram::1234567890:role/oss-target"
PROVIDER = "acs:ram::1234567890:oidc-provider/ack-rrsa-c123"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.oidc-token-for-tests"


@pytest.fixture
def logs():
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("DEBUG", stream)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(stream):
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def write_json(path, document):
    # Write then rename, as a Secret volume or a careful sidecar does: readers never see half.
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document))
    os.replace(temporary, path)


DOCUMENT = {
    "AccessKeyId": "STS.first",
    "AccessKeySecret": "secret-1",
    "SecurityToken": "token-1",
    "Expiration": "2030-01-01T00:00:00Z",
}


# ---- the STS file


def test_sts_file_is_read_and_reread_only_when_it_changes(tmp_path):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    source = StsFileSource(str(path))
    first = asyncio.run(source.fetch())
    assert (first.access_key_id, first.security_token) == ("STS.first", "token-1")
    assert first.expiration == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert not source.changed()
    write_json(path, {**DOCUMENT, "AccessKeyId": "STS.second", "SecurityToken": "token-2"})
    assert source.changed()
    second = asyncio.run(source.fetch())
    assert (second.access_key_id, second.security_token) == ("STS.second", "token-2")


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ([], "not a JSON object"),
        ({**DOCUMENT, "AccessKeyId": ""}, "no AccessKeyId"),
        ({k: v for k, v in DOCUMENT.items() if k != "AccessKeySecret"}, "no AccessKeySecret"),
        ({**DOCUMENT, "SecurityToken": 5}, "SecurityToken not text"),
        ({**DOCUMENT, "Expiration": "tomorrow"}, "Expiration is not an RFC 3339 time"),
    ],
)
def test_bad_sts_documents_name_the_field_never_a_value(document, complaint):
    with pytest.raises(CredentialsUnavailable) as caught:
        parse_sts_document(document, where="f.json")
    assert complaint in str(caught.value)
    assert "secret-1" not in str(caught.value)


def test_unreadable_and_non_json_files_are_unavailable(tmp_path):
    with pytest.raises(CredentialsUnavailable, match="cannot read"):
        asyncio.run(StsFileSource(str(tmp_path / "missing.json")).fetch())
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(CredentialsUnavailable, match="not JSON"):
        asyncio.run(StsFileSource(str(tmp_path / "bad.json")).fetch())


# ---- health


def make(source, **kwargs):
    return RefreshingCredentials(source, logging.getLogger("runtime.oss_target"), **kwargs)


def test_static_credentials_are_ready_after_the_first_fetch():
    credentials = make(StaticSource("ak", "sk"))
    assert credentials.get_credentials() is None and not credentials.ready
    assert asyncio.run(credentials.refresh()) is True
    assert credentials.get_credentials().access_key_id == "ak" and credentials.ready


def test_persistent_auth_failure_is_unready_and_logged_once_with_the_code(logs):
    credentials = make(StaticSource("ak-1234", "sk"))
    asyncio.run(credentials.refresh())
    for _ in range(FAILURES_BEFORE_UNREADY - 1):
        credentials.auth_failed("InvalidAccessKeyId")
    assert credentials.ready  # one refused request is not yet "persistent"
    for _ in range(5):
        credentials.auth_failed("InvalidAccessKeyId")
    assert not credentials.ready
    failing = [line for line in lines(logs) if line["msg"].startswith("authentication failing")]
    assert len(failing) == 1
    assert failing[0]["code"] == "InvalidAccessKeyId"
    assert failing[0]["access_key_id"] == "...1234"
    assert "sk" not in json.dumps(failing[0]).replace("ask", "")
    credentials.succeeded()
    assert credentials.ready
    assert [line["msg"] for line in lines(logs)][-1] == "authentication recovered"


def test_a_success_between_failures_resets_the_count():
    credentials = make(StaticSource("ak", "sk"))
    asyncio.run(credentials.refresh())
    for _ in range(10):
        credentials.auth_failed("SignatureDoesNotMatch")
        credentials.succeeded()
    assert credentials.ready


def test_rotated_file_recovers_a_failing_provider(tmp_path, logs):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    credentials = make(StsFileSource(str(path)))
    asyncio.run(credentials.refresh())
    for _ in range(FAILURES_BEFORE_UNREADY):
        credentials.auth_failed("SecurityTokenExpired")
    assert not credentials.ready
    assert asyncio.run(credentials.refresh()) is False  # same file: still failing
    assert not credentials.ready
    write_json(path, {**DOCUMENT, "SecurityToken": "token-2"})
    assert asyncio.run(credentials.refresh()) is True
    assert credentials.ready
    assert credentials.get_credentials().security_token == "token-2"


def test_expired_cached_credentials_and_no_new_ones_are_unready(tmp_path):
    path = tmp_path / "credentials.json"
    write_json(path, {**DOCUMENT, "Expiration": "2020-01-01T00:00:00Z"})
    credentials = make(StsFileSource(str(path)))
    asyncio.run(credentials.refresh())
    path.unlink()
    asyncio.run(credentials.refresh())
    assert not credentials.ready
    assert credentials.failing_code == "CredentialsFileUnreadable"


def test_a_failed_refresh_keeps_valid_cached_credentials(tmp_path):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    credentials = make(StsFileSource(str(path)))
    asyncio.run(credentials.refresh())
    path.write_text("{")
    assert asyncio.run(credentials.refresh()) is False
    assert credentials.ready and credentials.get_credentials().access_key_id == "STS.first"


def test_refresh_is_scheduled_before_expiry():
    now = datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp()
    credentials = make(StaticSource("ak", "sk"), clock=lambda: now - 3600, margin_seconds=900)
    credentials._current = parse_sts_document(DOCUMENT, where="t")
    credentials.source.refreshable = True  # as if it were an RRSA source
    assert credentials._next_delay(0) == pytest.approx(3600 - 900)
    assert credentials._next_delay(1) == 1.0  # failing: retry soon, backing off
    assert credentials._next_delay(50) == 30.0


# ---- RRSA against the emulator's STS


@pytest.fixture
def sts():
    with ObjectStoreEmulator() as store:
        store.trust_oidc(ROLE, PROVIDER, TOKEN)
        yield store


def oidc(store, token_file, **changes):
    arguments = {
        "role_arn": ROLE,
        "oidc_provider_arn": PROVIDER,
        "oidc_token_file": str(token_file),
        "sts_endpoint": store.sts_endpoint,
        **changes,
    }
    return OidcSource(**arguments)


def test_rrsa_exchanges_the_token_for_sts_credentials_that_oss_accepts(sts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    credentials = asyncio.run(oidc(sts, token_file).fetch())
    assert credentials.access_key_id.startswith("STS.")
    assert credentials.security_token and credentials.expiration is not None
    assert sts.credentials[credentials.access_key_id] == credentials.access_key_secret
    assert sts.sts.calls == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"role_arn": "acs:ram::1:role/other"}, "EntityNotExist.Role"),
        ({"token": "eyJ-not-the-token"}, "AuthenticationFail.OIDCToken.Invalid"),
    ],
)
def test_rrsa_refusals_carry_the_sts_code(sts, tmp_path, change, code):
    token_file = tmp_path / "token"
    token_file.write_text(change.pop("token", TOKEN))
    with pytest.raises(CredentialsUnavailable) as caught:
        asyncio.run(oidc(sts, token_file, **change).fetch())
    assert code in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_rrsa_without_a_token_file_is_unavailable(sts, tmp_path):
    with pytest.raises(CredentialsUnavailable):
        asyncio.run(oidc(sts, tmp_path / "absent").fetch())


def test_rrsa_invalidate_exchanges_again(sts, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    source = oidc(sts, token_file)
    first = asyncio.run(source.fetch())
    assert asyncio.run(source.fetch()).access_key_id == first.access_key_id  # cached
    source.invalidate()
    assert asyncio.run(source.fetch()).access_key_id != first.access_key_id
    assert sts.sts.calls == 2


def test_failed_refreshes_back_off_and_warn_once_while_cached_ones_last(tmp_path, logs):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    credentials = make(StsFileSource(str(path)), poll_seconds=0.01)
    asyncio.run(credentials.refresh())
    path.write_text("{")

    async def run_briefly():
        task = asyncio.create_task(credentials.run())
        await asyncio.sleep(1.5)
        task.cancel()

    asyncio.run(run_briefly())
    # Polling every 10 ms would have tried ~150 times; backing off (1 s, 2 s, ...) tries twice.
    warnings = [
        line for line in lines(logs) if line["msg"].startswith("credentials refresh failed")
    ]
    assert len(warnings) == 1
    assert credentials._refresh_failures == 2
    assert credentials.ready
