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
from alibabacloud_oss_v2.types import Credentials

from runtime.alibaba_oss_target.credentials import (
    AUTH_ERROR_CODES,
    FAILURES_BEFORE_UNREADY,
    MIN_REFRESH_SECONDS,
    CredentialsUnavailable,
    OidcSource,
    RefreshingCredentials,
    StaticSource,
    StsFileSource,
    parse_expiration,
    parse_sts_text,
    refresh_after,
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


def test_sts_file_is_read_and_taken_when_its_bytes_change(tmp_path):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    source = StsFileSource(str(path))
    first = asyncio.run(source.fetch())
    assert (first.access_key_id, first.security_token) == ("STS.first", "token-1")
    assert first.expiration == datetime(2030, 1, 1, tzinfo=timezone.utc)
    assert asyncio.run(source.fetch()) is first  # unchanged bytes: the parsed value is kept
    write_json(path, {**DOCUMENT, "AccessKeyId": "STS.second", "SecurityToken": "token-2"})
    second = asyncio.run(source.fetch())
    assert (second.access_key_id, second.security_token) == ("STS.second", "token-2")


def test_a_same_length_rewrite_in_the_same_mtime_tick_is_seen(tmp_path):
    # (inode, size, mtime) cannot see this: same file, same length, mtime restored.
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    source = StsFileSource(str(path))
    asyncio.run(source.fetch())
    info = os.stat(path)
    path.write_text(json.dumps({**DOCUMENT, "AccessKeyId": "STS.other"}))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert asyncio.run(source.fetch()).access_key_id == "STS.other"


DEEP = '{"AccessKeyId": "a", "AccessKeySecret": "secret-1", "x": ' + "[" * 20000 + "]" * 20000 + "}"


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (json.dumps([]), "not a JSON object"),
        (json.dumps({**DOCUMENT, "AccessKeyId": ""}), "no AccessKeyId"),
        (json.dumps({k: v for k, v in DOCUMENT.items() if k != "AccessKeySecret"}),
         "no AccessKeySecret"),
        (json.dumps({**DOCUMENT, "SecurityToken": 5}), "SecurityToken not text"),
        (json.dumps({**DOCUMENT, "Expiration": "tomorrow"}), "Expiration is not"),
        (json.dumps({**DOCUMENT, "Expiration": 1764470000}), "Expiration is not"),
        # valid RFC 3339, but outside what a UTC datetime holds (OverflowError before)
        (json.dumps({**DOCUMENT, "Expiration": "9999-12-31T23:59:59-01:00"}), "Expiration is not"),
        (json.dumps({**DOCUMENT, "Expiration": "0001-01-01T00:00:00+01:00"}), "Expiration is not"),
        (DEEP, "not JSON"),  # RecursionError before
        ("{", "not JSON"),
    ],
)  # fmt: skip
def test_every_bad_sts_file_is_unavailable_naming_the_field_never_a_value(content, complaint):
    with pytest.raises(CredentialsUnavailable) as caught:
        parse_sts_text(content.encode(), where="f.json")
    assert complaint in str(caught.value)
    assert "secret-1" not in str(caught.value)


def test_non_utf8_is_not_json():
    with pytest.raises(CredentialsUnavailable, match="not JSON"):
        parse_sts_text(b'{"AccessKeyId": "\xff\xfe"}', where="f")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T01:00:00Z", datetime(2026, 11, 30, 1, tzinfo=timezone.utc)),
        ("2026-11-30t01:00:00z", datetime(2026, 11, 30, 1, tzinfo=timezone.utc)),
        ("2026-11-30T02:00:00.5+01:00", datetime(2026, 11, 30, 1, 0, 0, 500000, timezone.utc)),
        ("2026-12-31T23:59:60Z", datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone.utc)),
        ("2026-W48-1", None),
        ("20261130T010000Z", None),
        ("2026-11-30", None),
        ("2026-11-30T01:00:00", None),  # RFC 3339 requires the offset
        ("2026-11-30 01:00:00Z", None),
        ("2026-02-30T01:00:00Z", None),
        ("9999-12-31T23:59:59-01:00", None),
    ],
)
def test_expiration_is_rfc_3339_as_written(text, expected):
    if expected is None:
        with pytest.raises(ValueError):
            parse_expiration(text)
    else:
        assert parse_expiration(text) == expected


@pytest.mark.parametrize("kind", ["missing", "directory", "empty", "bad"])
def test_unreadable_empty_and_non_json_files_are_unavailable(tmp_path, kind):
    path = tmp_path / "c.json"
    if kind == "directory":
        path = tmp_path
    elif kind == "empty":
        path.write_text("  \n")
    elif kind == "bad":
        path.write_text("{")
    with pytest.raises(CredentialsUnavailable):
        asyncio.run(StsFileSource(str(path)).fetch())


# ---- health


class Clock:
    """Epoch seconds that tests move by hand."""

    def __init__(self, now: float = datetime(2029, 1, 1, tzinfo=timezone.utc).timestamp()):
        self.now = now

    def __call__(self) -> float:
        return self.now


class Exchanges:
    """A source like RRSA: every fetch is a network exchange that returns a new key."""

    name = "rrsa"
    refreshable = True
    remote = True

    def __init__(self, clock, lifetime: float = 3600.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.error: str | None = None

    async def fetch(self):
        self.calls += 1
        await asyncio.sleep(0)  # a real exchange yields to the loop
        if self.error:
            raise CredentialsUnavailable(self.error, f"AssumeRoleWithOIDC failed: {self.error}")
        expires = datetime.fromtimestamp(self.clock() + self.lifetime, timezone.utc)
        return Credentials(f"STS.key{self.calls:04d}", f"secret-{self.calls}", "tok", expires)


def make(source, **kwargs):
    return RefreshingCredentials(source, logging.getLogger("runtime.oss_target"), **kwargs)


def messages(stream, start):
    return [line for line in lines(stream) if line["msg"].startswith(start)]


def test_static_credentials_are_ready_after_the_first_fetch():
    credentials = make(StaticSource("ak", "sk"))
    assert credentials.get_credentials() is None and not credentials.ready
    assert asyncio.run(credentials.refresh()) is True
    assert credentials.get_credentials().access_key_id == "ak" and credentials.ready


def test_persistent_auth_failure_is_unready_and_logged_once_with_the_code(logs):
    credentials = make(StaticSource("ak-1234", "sk"))

    async def scenario():
        await credentials.refresh()
        for _ in range(FAILURES_BEFORE_UNREADY - 1):
            assert await credentials.refused("InvalidAccessKeyId", credentials.generation) is False
        assert credentials.ready  # one refused request is not yet "persistent"
        for _ in range(5):
            await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert not credentials.ready
        credentials.succeeded()

    asyncio.run(scenario())
    failing = messages(logs, "authentication failing")
    assert len(failing) == 1
    assert failing[0]["code"] == "InvalidAccessKeyId"
    assert failing[0]["access_key_id"] == "...1234"
    assert "sk" not in json.dumps(failing[0]).replace("ask", "")
    assert credentials.ready
    assert [line["msg"] for line in lines(logs)][-1] == "authentication recovered"


def test_a_success_between_failures_resets_the_count():
    credentials = make(StaticSource("ak", "sk"))

    async def scenario():
        await credentials.refresh()
        for _ in range(10):
            await credentials.refused("SignatureDoesNotMatch", credentials.generation)
            credentials.succeeded()

    asyncio.run(scenario())
    assert credentials.ready


@pytest.mark.parametrize("kind", ["static", "file"])
def test_a_refused_key_that_works_again_comes_back_after_the_recheck(tmp_path, logs, kind):
    # Nothing re-tested a failing pod's credentials and no traffic reaches a not-ready pod: it
    # stayed 503 forever. Now RECHECK seconds after the last refusal it is ready on probation.
    clock = Clock()
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    source = StaticSource("ak-1234", "sk") if kind == "static" else StsFileSource(str(path))
    credentials = make(source, clock=clock, probation_seconds=30)

    async def scenario():
        await credentials.refresh()
        for _ in range(FAILURES_BEFORE_UNREADY):
            await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert not credentials.ready
        clock.now += 29
        await credentials._tick()
        assert not credentials.ready
        clock.now += 1
        await credentials._tick()
        assert credentials.ready  # on probation: the next upload is the probe
        await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert not credentials.ready  # one refused probe is enough
        clock.now += 30
        await credentials._tick()
        assert credentials.ready
        credentials.succeeded()
        await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert credentials.ready  # healthy again: one refusal is not persistent

    asyncio.run(scenario())
    assert len(messages(logs, "authentication failing")) == 1
    assert len(messages(logs, "authentication recovered")) == 1


def test_the_background_loop_runs_the_recheck(logs):
    credentials = make(StaticSource("ak", "sk"), probation_seconds=0.05)

    async def scenario():
        await credentials.refresh()
        task = asyncio.create_task(credentials.run())
        for _ in range(FAILURES_BEFORE_UNREADY):
            await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert not credentials.ready
        for _ in range(200):
            if credentials.ready:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        return credentials.ready

    assert asyncio.run(scenario()) is True


def test_rotated_file_recovers_a_failing_provider_at_once(tmp_path):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    credentials = make(StsFileSource(str(path)))

    async def scenario():
        await credentials.refresh()
        for _ in range(FAILURES_BEFORE_UNREADY):
            await credentials.refused("InvalidSecurityToken", credentials.generation)
        assert not credentials.ready
        assert await credentials.refresh() is False  # same file: still failing
        assert not credentials.ready
        write_json(path, {**DOCUMENT, "SecurityToken": "token-2"})
        assert await credentials.refresh() is True

    asyncio.run(scenario())
    assert credentials.ready
    assert credentials.get_credentials().security_token == "token-2"


def test_refusals_are_single_flight_rate_limited_and_count_across_keys(logs):
    # Before: every refusal started an exchange and the new key reset the count (20 events ->
    # 21 exchanges, never not-ready; 8 senders -> 86 exchanges, 85 failing/recovered pairs).
    clock = Clock()
    source = Exchanges(clock)
    credentials = make(source, clock=clock, refetch_seconds=10)

    async def scenario():
        await credentials.refresh()
        assert source.calls == 1
        refused = credentials.generation
        # 8 concurrent uploads refused with the same key: one exchange, all may retry once.
        again = await asyncio.gather(
            *(credentials.refused("InvalidAccessKeyId", refused) for _ in range(8))
        )
        assert again == [True] * 8 and source.calls == 2
        assert credentials.ready  # the refused key was replaced: nothing against the new one yet
        # The fresh key is refused too: the count carries on, no exchange within 10 s.
        results = [
            await credentials.refused("InvalidAccessKeyId", credentials.generation)
            for _ in range(20)
        ]
        assert results == [False] * 20 and source.calls == 2
        assert not credentials.ready
        clock.now += 10
        await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert source.calls == 3  # one more exchange per refetch interval, at most

    asyncio.run(scenario())
    assert len(messages(logs, "authentication failing")) == 1
    assert messages(logs, "authentication recovered") == []


def test_rrsa_recheck_exchanges_again_then_probation(logs):
    clock = Clock()
    source = Exchanges(clock)
    credentials = make(source, clock=clock, refetch_seconds=10, probation_seconds=30)

    async def scenario():
        await credentials.refresh()
        for _ in range(FAILURES_BEFORE_UNREADY + 1):
            await credentials.refused("InvalidAccessKeyId", credentials.generation)
        assert not credentials.ready
        calls = source.calls
        clock.now += 30
        await credentials._tick()
        assert source.calls == calls + 1 and credentials.ready
        credentials.succeeded()

    asyncio.run(scenario())
    assert len(messages(logs, "authentication recovered")) == 1


def test_expired_credentials_are_not_ready_and_refusals_are_retryable(tmp_path, logs):
    clock = Clock(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp() - 10)
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    credentials = make(StsFileSource(str(path)), clock=clock)

    async def scenario():
        await credentials.refresh()
        assert credentials.ready
        assert not credentials.refusal_retryable("InvalidAccessKeyId")
        clock.now += 10  # the Expiration passes, nobody rotates, no traffic
        assert not credentials.ready
        assert credentials.refusal_retryable("InvalidSecurityToken")
        await credentials._tick()
        assert credentials.failing_code == "CredentialsExpired"
        await credentials._tick()
        write_json(path, {**DOCUMENT, "Expiration": "2031-01-01T00:00:00Z"})
        await credentials._tick()
        assert credentials.ready

    asyncio.run(scenario())
    assert [line["code"] for line in messages(logs, "authentication failing")] == [
        "CredentialsExpired"
    ]
    assert len(messages(logs, "authentication recovered")) == 1


def test_a_file_already_expired_at_start_is_not_ready(tmp_path):
    path = tmp_path / "credentials.json"
    write_json(path, {**DOCUMENT, "Expiration": "2020-01-01T00:00:00Z"})
    credentials = make(StsFileSource(str(path)))
    asyncio.run(credentials.refresh())
    assert not credentials.ready
    assert credentials.failing_code == "CredentialsExpired"
    path.unlink()
    asyncio.run(credentials.refresh())
    assert not credentials.ready


@pytest.mark.parametrize("code", ["RequestTimeTooSkewed", "SecurityTokenExpired"])
def test_pod_state_refusals_count_and_are_retryable(code):
    credentials = make(StaticSource("ak", "sk"))

    async def scenario():
        await credentials.refresh()
        assert credentials.refusal_retryable(code)
        for _ in range(FAILURES_BEFORE_UNREADY):
            await credentials.refused(code, credentials.generation)

    asyncio.run(scenario())
    assert code in AUTH_ERROR_CODES and not credentials.ready


def test_a_failed_refresh_keeps_valid_cached_credentials_and_keeps_watching(tmp_path, logs):
    path = tmp_path / "credentials.json"
    write_json(path, DOCUMENT)
    credentials = make(StsFileSource(str(path)))

    async def scenario():
        await credentials.refresh()
        for bad in ("{", json.dumps({**DOCUMENT, "Expiration": "9999-12-31T23:59:59-01:00"})):
            path.write_text(bad)
            assert await credentials.refresh() is False
            assert credentials.ready
            assert credentials.get_credentials().access_key_id == "STS.first"
        write_json(path, {**DOCUMENT, "AccessKeyId": "STS.third"})
        assert await credentials.refresh() is True

    asyncio.run(scenario())
    assert len(messages(logs, "credentials refresh failed")) == 1
    assert credentials.get_credentials().access_key_id == "STS.third"


def test_the_background_loop_survives_any_error(logs):
    class Broken:
        name, refreshable, remote = "stsFile", True, False
        calls = 0

        async def fetch(self):
            self.calls += 1
            raise RuntimeError("a bug")

    source = Broken()
    credentials = make(source, poll_seconds=0.01)

    async def scenario():
        task = asyncio.create_task(credentials.run())
        for _ in range(200):
            if source.calls >= 3:
                break
            await asyncio.sleep(0.01)
        assert not task.done()
        task.cancel()

    asyncio.run(scenario())
    assert source.calls >= 3
    errors = messages(logs, "credentials refresh error")
    assert [line["error"] for line in errors] == ["RuntimeError"]  # once, not at every poll


def test_a_file_is_watched_at_its_interval_whatever_failed_before(tmp_path):
    path = tmp_path / "credentials.json"
    credentials = make(StsFileSource(str(path)), poll_seconds=5.0)
    for failures in range(10):
        credentials._refresh_failures = failures
        assert credentials._next_delay(failures) <= 5.0


def test_expiring_credentials_are_fetched_at_a_fraction_of_their_lifetime():
    now = 1_900_000_000.0

    def at(lifetime):
        return refresh_after(now, datetime.fromtimestamp(now + lifetime, timezone.utc)) - now

    assert at(900) == pytest.approx(600)  # was: once a second (inside a 15-minute window)
    assert at(3600) == pytest.approx(2700)
    assert at(43200) == pytest.approx(43200 - 900)
    assert at(30) == MIN_REFRESH_SECONDS  # the floor, even for nearly expired ones
    assert refresh_after(now, None) is None


def test_the_loop_waits_for_the_scheduled_refresh():
    clock = Clock()
    source = Exchanges(clock, lifetime=900)
    credentials = make(source, clock=clock)
    asyncio.run(credentials.refresh())
    assert credentials._next_delay(0) == pytest.approx(300.0)  # capped wait, then re-planned
    clock.now += 599
    assert credentials._next_delay(0) == pytest.approx(1.0)
    asyncio.run(credentials._tick())
    assert source.calls == 1  # not due yet
    clock.now += 1
    asyncio.run(credentials._tick())
    assert source.calls == 2


def test_failed_exchanges_back_off():
    clock = Clock()
    source = Exchanges(clock)
    source.error = "Throttling.User"
    credentials = make(source, clock=clock)
    asyncio.run(credentials.refresh())
    assert not credentials.ready and credentials.failing_code == "Throttling.User"
    assert credentials._next_delay(1) == 1.0
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


def test_every_rrsa_fetch_is_one_exchange(sts, tmp_path):
    # The library's own cache (stale 15 minutes before expiry) no longer decides: with 900 s
    # credentials it re-exchanged on every call. RefreshingCredentials schedules the fetches.
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    source = oidc(sts, token_file, duration_seconds=900)
    first = asyncio.run(source.fetch())
    assert asyncio.run(source.fetch()).access_key_id != first.access_key_id
    assert sts.sts.calls == 2


def test_a_refusal_reported_without_waiting_counts_the_same(logs):
    credentials = make(StaticSource("ak", "sk"), probation_seconds=30, clock=Clock())

    async def scenario():
        await credentials.refresh()
        for _ in range(FAILURES_BEFORE_UNREADY):
            credentials.auth_failed("InvalidAccessKeyId")
        assert not credentials.ready
        credentials._clock.now += 30
        await credentials._tick()
        assert credentials.ready
        credentials.auth_failed("InvalidAccessKeyId")  # the probe
        assert not credentials.ready

    asyncio.run(scenario())
    assert len(messages(logs, "authentication failing")) == 1
