"""The relay's Standard Webhooks verifier: the specification on raw bytes, agreeing with the
reference library on every body it can handle, and with the SCF function's signer on every body."""

import base64
import time
from datetime import datetime, timezone

import pytest
from standardwebhooks import Webhook

from runtime.relay.signature import SignatureError, check_headers, signing_key, verify
from runtime.tencent_cos_source import cos_delivery

SECRET = "whsec_" + base64.b64encode(b"relay-secret-key-0123456789abcd!").decode()
KEY = signing_key(SECRET)
NOW = 1_800_000_000


def library_headers(body: str, msg_id: str = "msg-1", at: int = NOW, secret: str = SECRET):
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(at, timezone.utc), body)
    return {"webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": signature}


@pytest.mark.parametrize(
    "body", ["", '{"Records":[]}', "ünïcødé ✓", "a" * 100_000], ids=["empty", "json", "utf8", "big"]
)
def test_accepts_what_the_reference_library_signs(body):
    now = int(time.time())  # the library checks the timestamp against the real clock
    headers = library_headers(body, at=now)
    Webhook(SECRET).verify(body.encode(), {**headers}, json_parse=False)  # the library agrees
    verify(KEY, headers, body.encode(), now)


def test_accepts_a_body_that_is_not_utf8_signed_by_the_function():
    # The reference library cannot even decode this body; the function signs raw bytes.
    body = bytes(range(256))
    headers = {
        "webhook-id": "msg-9",
        "webhook-timestamp": str(NOW),
        "webhook-signature": cos_delivery.sign(KEY, "msg-9", NOW, body),
    }
    with pytest.raises(UnicodeDecodeError):
        Webhook(SECRET).verify(body, headers, json_parse=False)
    verify(KEY, headers, body, NOW)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: ({**h, "webhook-signature": "v1,AAAA"}, b), "not 32 bytes"),
        (lambda h, b: ({**h, "webhook-signature": "v1," + "A" * 43 + "="}, b), "no matching"),
        (lambda h, b: (h, b + b" "), "no matching"),
        (lambda h, b: ({**h, "webhook-id": "msg-2"}, b), "no matching"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 1)}, b), "no matching"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW - 301)}, b), "5 minutes"),
        (lambda h, b: ({**h, "webhook-timestamp": str(NOW + 301)}, b), "5 minutes"),
        (lambda h, b: ({**h, "webhook-timestamp": "soon"}, b), "whole seconds"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-id"}, b), "missing"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "webhook-signature"}, b), "missing"),
        (lambda h, b: ({**h, "webhook-signature": "v2," + h["webhook-signature"][3:]}, b), "no"),
        (lambda h, b: ({**h, "webhook-signature": "v1,%%%"}, b), "not valid base64"),
    ],
    ids=[
        "short",
        "forged",
        "tampered-body",
        "other-id",
        "other-timestamp",
        "replayed-old",
        "future",
        "bad-timestamp",
        "no-id",
        "unsigned",
        "unknown-version",
        "garbled",
    ],
)
def test_refuses(change, reason):
    body = b'{"Records":[]}'
    headers, sent = change(library_headers(body.decode()), body)
    with pytest.raises(SignatureError, match=reason):
        verify(KEY, headers, sent, NOW)


def test_refuses_another_secret_and_accepts_one_of_several_signatures():
    other = "whsec_" + base64.b64encode(b"another-secret-key-0123456789ab!").decode()
    body = b"{}"
    foreign = library_headers("{}", secret=other)
    with pytest.raises(SignatureError):
        verify(KEY, foreign, body, NOW)
    # Key rotation: a sender may send signatures under the old and the new secret.
    both = {
        **foreign,
        "webhook-signature": foreign["webhook-signature"]
        + " "
        + library_headers("{}")["webhook-signature"],
    }
    verify(KEY, both, body, NOW)


def test_header_names_are_case_insensitive():
    headers = {name.title(): value for name, value in library_headers("{}").items()}
    verify(KEY, headers, b"{}", NOW)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("webhook-timestamp", "9" * 5000, "whole seconds"),
        ("webhook-timestamp", "\u0661\u0667" + "\u0660" * 8, "whole seconds"),
        ("webhook-timestamp", "²", "whole seconds"),
        ("webhook-timestamp", "-5", "whole seconds"),
        ("webhook-timestamp", " 1", "whole seconds"),
        ("webhook-id", "ïd", "visible ASCII"),
        ("webhook-id", "a b", "visible ASCII"),
        ("webhook-id", "x" * 257, "visible ASCII"),
        ("webhook-signature", "v1", "<version>,<base64>"),
        ("webhook-signature", "v1a,abc v1", "<version>,<base64>"),
        ("webhook-signature", "V1,abc", "<version>,<base64>"),
        ("webhook-signature", "v1,é", "<version>,<base64>"),
        ("webhook-signature", " ".join(["v1a,x"] * 17), "more than 16"),
        ("webhook-signature", "v1a,xyz", "no v1 signature"),
    ],
)
def test_malformed_headers_are_refused_before_any_body(name, value, reason):
    headers = {**library_headers("{}"), name: value}
    with pytest.raises(SignatureError, match=reason):
        check_headers(headers, NOW)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_repeated_header_is_refused(name):
    headers = library_headers("{}")
    pairs = [*headers.items(), (name.title(), headers[name])]
    with pytest.raises(SignatureError, match="more than once"):
        check_headers(pairs, NOW)


def test_the_timestamp_is_signed_as_sent():
    # "0" + the timestamp is the same number but not the same signed text.
    headers = library_headers("{}")
    padded = {**headers, "webhook-timestamp": "0" + headers["webhook-timestamp"]}
    with pytest.raises(SignatureError, match="no matching"):
        verify(KEY, padded, b"{}", NOW)
