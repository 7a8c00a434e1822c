"""STS for the object-store emulator: `AssumeRoleWithOIDC` and credentials that expire.

The real API (Alibaba Cloud STS 2015-04-01, `AssumeRoleWithOIDC`) is an RPC call that needs no
signature: the OIDC token is the proof. Parameters arrive in the query (or a form body):
`Action`, `Version`, `Format`, `RoleArn`, `OIDCProviderArn`, `OIDCToken` (4-20,000 characters),
`RoleSessionName` (2-64 of `[A-Za-z0-9.@_-]`), `DurationSeconds` (900 up to the role's maximum,
default 3600), `Policy`. The JSON answer carries `RequestId`, `Credentials` {`AccessKeyId`
("STS." + ...), `AccessKeySecret`, `SecurityToken`, `Expiration` (`YYYY-MM-DDThh:mm:ssZ`)},
`AssumedRoleUser` {`Arn`, `AssumedRoleId`} and `OIDCTokenInfo`; errors are
{`RequestId`, `HostId`, `Code`, `Message`} with a 4xx status.

Tests register which (provider, role, token) triples are valid (`OidcTrust`); issued credentials
are added to the emulator's key table with an expiry that OSS requests are checked against
(403 `SecurityTokenExpired` after it, as OSS answers).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

STS_VERSION = "2015-04-01"
_SESSION_NAME = re.compile(r"^[A-Za-z0-9.@_-]{2,64}$")


@dataclass(frozen=True)
class OidcTrust:
    """A RAM role that trusts `provider_arn`, and the token that provider issued."""

    role_arn: str
    provider_arn: str
    token: str
    max_session_seconds: int = 3600


@dataclass(frozen=True)
class IssuedCredentials:
    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: float

    def document(self) -> dict[str, str]:
        """The JSON shape STS, ECS metadata and the credentials URI use."""
        return {
            "AccessKeyId": self.access_key_id,
            "AccessKeySecret": self.access_key_secret,
            "SecurityToken": self.security_token,
            "Expiration": expiration_text(self.expires_at),
        }


def expiration_text(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


class StsService:
    """The emulator's STS state: trusted OIDC roles, issued keys and their expiry."""

    def __init__(self, clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.trusts: list[OidcTrust] = []
        self.expiry: dict[str, float] = {}  # access key id -> epoch seconds
        self.calls = 0
        self.fail_next: list[tuple[int, str]] = []  # (status, code) answered instead

    def issue(self, store, seconds: float) -> IssuedCredentials:
        """New STS credentials valid for `seconds` from the emulator's clock."""
        issued = IssuedCredentials(
            "STS." + os.urandom(10).hex(),
            os.urandom(15).hex(),
            "CAIS" + os.urandom(24).hex(),
            self._clock() + seconds,
        )
        with self._lock:
            store.credentials[issued.access_key_id] = issued.access_key_secret
            store.security_tokens[issued.access_key_id] = issued.security_token
            self.expiry[issued.access_key_id] = issued.expires_at
        return issued

    def expired(self, access_key_id: str) -> bool:
        expires_at = self.expiry.get(access_key_id)
        return expires_at is not None and self._clock() >= expires_at

    def handle(self, store, query: str, body: bytes, request_id: str):
        """One STS request -> (status, headers, JSON body)."""
        with self._lock:
            self.calls += 1
            fault = self.fail_next.pop(0) if self.fail_next else None
        params = dict(parse_qsl(query, keep_blank_values=True))
        if body:
            params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if fault is not None:
            return _error(fault[0], fault[1], "Injected fault.", request_id)
        if params.get("Action") != "AssumeRoleWithOIDC":
            return _error(400, "InvalidAction.NotFound", "Specified api is not found.", request_id)
        if params.get("Version") != STS_VERSION:
            return _error(
                400, "InvalidVersion", "Specified parameter Version is not valid.", request_id
            )
        for name in ("RoleArn", "OIDCProviderArn", "OIDCToken", "RoleSessionName"):
            if not params.get(name):
                return _error(400, "MissingParameter", f"{name} is mandatory.", request_id)
        if not 4 <= len(params["OIDCToken"]) <= 20000:
            return _error(400, "InvalidParameter.OIDCToken", "OIDCToken is invalid.", request_id)
        if not _SESSION_NAME.match(params["RoleSessionName"]):
            return _error(
                400, "InvalidParameter.RoleSessionName", "RoleSessionName is invalid.", request_id
            )
        try:
            duration = int(params.get("DurationSeconds") or 3600)
        except ValueError:
            return _error(
                400, "InvalidParameter.DurationSeconds", "DurationSeconds is invalid.", request_id
            )
        trust = next(
            (
                t
                for t in self.trusts
                if t.role_arn == params["RoleArn"] and t.provider_arn == params["OIDCProviderArn"]
            ),
            None,
        )
        if trust is None:
            return _error(404, "EntityNotExist.Role", "The role not exists.", request_id)
        if params["OIDCToken"] != trust.token:
            return _error(
                400,
                "AuthenticationFail.OIDCToken.Invalid",
                "The OIDC token is invalid.",
                request_id,
            )
        if not 900 <= duration <= trust.max_session_seconds:
            return _error(
                400,
                "InvalidParameter.DurationSeconds",
                "The Min/Max value of DurationSeconds is 15min/max session duration.",
                request_id,
            )
        issued = self.issue(store, duration)
        session = params["RoleSessionName"]
        answer = {
            "RequestId": request_id,
            "Credentials": issued.document(),
            "AssumedRoleUser": {
                "Arn": f"{trust.role_arn.replace(':role/', ':assumed-role/')}/{session}",
                "AssumedRoleId": f"3{os.urandom(8).hex()}:{session}",
            },
            "OIDCTokenInfo": {"Subject": "system:serviceaccount", "Issuer": trust.provider_arn},
        }
        return 200, {"Content-Type": "application/json;charset=utf-8"}, json.dumps(answer).encode()


def _error(status: int, code: str, message: str, request_id: str):
    body = {"RequestId": request_id, "HostId": "sts.aliyuncs.com", "Code": code, "Message": message}
    return status, {"Content-Type": "application/json;charset=utf-8"}, json.dumps(body).encode()
