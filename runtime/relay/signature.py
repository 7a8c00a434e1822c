"""Standard Webhooks verification over the raw request body.

The signed content is `<webhook-id>.<webhook-timestamp>.<body bytes>` (HMAC-SHA256, `v1,<base64>`
entries in `webhook-signature`, https://www.standardwebhooks.com/). The `standardwebhooks` Python
library (1.1.0) decodes the body as UTF-8 before signing, so it cannot verify a binary-mode
CloudEvent whose data is not text; this module follows the specification on bytes, and the tests
check it against the library on every body the library can handle.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

# Older (or newer) timestamps are refused, so a captured request cannot be replayed later.
TOLERANCE_SECONDS = 5 * 60


class SignatureError(Exception):
    """Why a request's signature was refused (safe to log: it never contains the secret)."""


def signing_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_<base64>` secret (validated by the settings)."""
    encoded = secret.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def verify(key: bytes, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Return when one `v1` signature matches and the timestamp is within the tolerance."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id", "")
    timestamp = lowered.get("webhook-timestamp", "")
    signatures = lowered.get("webhook-signature", "")
    if not (msg_id and timestamp and signatures):
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    if not timestamp.isdigit():
        raise SignatureError("webhook-timestamp is not whole seconds")
    if abs(now - int(timestamp)) > TOLERANCE_SECONDS:
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now")
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(candidate, expected):
            return
    raise SignatureError("no matching v1 signature")
