"""The signed-delivery contract between the SCF function and the relay, built here from its text
(README "Relay"), so the relay's tests do not depend on the function's code:

one event per request in structured mode; body = `json.dumps(event, separators=(",", ":"),
ensure_ascii=False)` in UTF-8; `webhook-id` = the event id; `webhook-timestamp` = Unix seconds;
`webhook-signature` = `v1,` + base64(HMAC-SHA256(key, f"{id}.{timestamp}.".encode() + body)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

SECRET = "whsec_" + base64.b64encode(b"relay-secret-key-0123456789abcd!").decode()
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))
OTHER_KEY = b"another-secret-key-0123456789ab!"
CONTENT_TYPE = "application/cloudevents+json; charset=utf-8"

EVENT = {
    "specversion": "1.0",
    "id": "6f1c1b8e-3c9a-5d1e-9d0b-2f4e8a7c5b10",
    "source": "qcs::cos:ap-guangzhou:uid1250000000:examplebucket-1250000000",
    "type": "tencent-cloud-cos-event",
    "time": "2018-12-19T07:49:30.5Z",
    "subject": "photos/2024/a b你.jpg",
    "cosbucket": "examplebucket-1250000000",
    "datacontenttype": "application/json",
    "data": {"cos": {"cosObject": {"key": "photos/2024/a b你.jpg", "size": 1024}}, "n": 1.50},
}


def encode(event: dict) -> bytes:
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def signature(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def signed_request(
    event: dict | None = None,
    *,
    key: bytes = KEY,
    at: int | None = None,
    msg_id: str | None = None,
    body: bytes | None = None,
) -> tuple[dict[str, str], bytes]:
    """(headers, body) exactly as the function sends them."""
    event = EVENT if event is None else event
    body = encode(event) if body is None else body
    timestamp = int(time.time()) if at is None else at
    msg_id = event["id"] if msg_id is None else msg_id
    headers = {
        "Content-Type": CONTENT_TYPE,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, msg_id, timestamp, body),
    }
    return headers, body
