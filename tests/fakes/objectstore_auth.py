"""Pure request-signature verifiers for the object-store emulator: OSS V1, OSS V4 and COS q-sign.

Each verifier takes a `SignedRequest` (what arrived on the wire, already URL-decoded) plus the
secret of the access key it names, and raises `AuthError` with the vendor's error code when the
request is not signed exactly as the service expects. They never see the network, so tests can
drive them with hand-made requests or with requests signed by the SDKs' own auth classes.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_tz
from urllib.parse import quote

from tests.fakes.objectstore_errors import ServiceError

# Real OSS refuses requests whose date is more than 15 minutes away from its clock.
MAX_CLOCK_SKEW_SECONDS = 15 * 60

# Query parameters that OSS V1 folds into the canonical resource (the documented sub-resources).
OSS_V1_SUBRESOURCES = frozenset(
    [
        "acl",
        "append",
        "asyncFetch",
        "bucketInfo",
        "callback",
        "callback-var",
        "cname",
        "comp",
        "continuation-token",
        "cors",
        "delete",
        "encryption",
        "endTime",
        "group",
        "httpsConfig",
        "inventory",
        "inventoryId",
        "lifecycle",
        "link",
        "live",
        "location",
        "logging",
        "metaQuery",
        "objectInfo",
        "objectMeta",
        "partNumber",
        "policy",
        "position",
        "qos",
        "qosInfo",
        "referer",
        "regionList",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "requestPayment",
        "resourceGroup",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "response-content-language",
        "response-content-type",
        "response-expires",
        "restore",
        "security-token",
        "sequential",
        "startTime",
        "stat",
        "status",
        "style",
        "styleName",
        "symlink",
        "tagging",
        "transferAcceleration",
        "uploadId",
        "uploads",
        "versionId",
        "versioning",
        "versions",
        "vod",
        "website",
        "worm",
        "wormExtend",
        "wormId",
        "x-oss-ac-forward-allow",
        "x-oss-ac-source-ip",
        "x-oss-ac-subnet-mask",
        "x-oss-ac-vpc-id",
        "x-oss-async-process",
        "x-oss-process",
        "x-oss-request-payer",
        "x-oss-traffic-limit",
        "x-oss-write-get-object-response",
    ]
)

# Headers COS lets a client put in q-header-list (plus every x-cos-* and x-ci-* header).
COS_SIGNABLE_HEADERS = frozenset(
    [
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-type",
        "content-md5",
        "content-length",
        "expect",
        "expires",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "origin",
        "range",
        "transfer-encoding",
        "pic-operations",
    ]
)

_V4_ALGORITHM = "OSS4-HMAC-SHA256"
_V4_TERMINATOR = "aliyun_v4_request"
_UNRESERVED = "-_.~"


class AuthError(ServiceError):
    """A request whose credentials or signature the service would refuse."""


@dataclass(frozen=True)
class SignedRequest:
    """One request as the server saw it. `headers` keys are lower-case; path parts are decoded."""

    method: str
    bucket: str
    key: str
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    body_sha256: str | None = None  # hex digest of the body, when the caller computed it


@dataclass(frozen=True)
class AuthHeader:
    """The parts of an Authorization header that are known before the secret is looked up."""

    scheme: str  # "oss-v1" | "oss-v4" | "cos"
    access_key_id: str
    fields: dict[str, str] = field(default_factory=dict)


def parse_authorization(value: str | None) -> AuthHeader:
    """Recognise the three schemes; anything else is the 403 a real service gives garbage."""
    if not value:
        raise AuthError(403, "AccessDenied", "Anonymous access is forbidden for this operation.")
    if value.startswith("OSS "):
        ak, sep, sig = value[4:].partition(":")
        if not sep or not ak.strip() or not sig:
            raise _garbled()
        return AuthHeader("oss-v1", ak.strip(), {"Signature": sig.strip()})
    if value.startswith(_V4_ALGORITHM + " "):
        return _parse_v4(value[len(_V4_ALGORITHM) + 1 :])
    if value.startswith("q-sign-algorithm="):
        return _parse_cos(value)
    raise _garbled()


def _garbled() -> AuthError:
    return AuthError(403, "AccessDenied", "Authorization header is invalid.")


def _parse_v4(rest: str) -> AuthHeader:
    parts: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if not sep:
            raise _garbled()
        parts[name] = val.strip()
    credential = parts.get("Credential", "").split("/")
    if len(credential) != 5 or not credential[0] or "Signature" not in parts:
        raise _garbled()
    ak, date, region, product, terminator = credential
    fields = {
        "Signature": parts["Signature"],
        "Date": date,
        "Region": region,
        "Product": product,
        "Terminator": terminator,
        "AdditionalHeaders": parts.get("AdditionalHeaders", ""),
    }
    return AuthHeader("oss-v4", ak, fields)


def _parse_cos(value: str) -> AuthHeader:
    fields = {}
    for item in value.split("&"):
        name, _, val = item.partition("=")
        fields[name] = val
    required = (
        "q-sign-algorithm",
        "q-ak",
        "q-sign-time",
        "q-key-time",
        "q-header-list",
        "q-url-param-list",
        "q-signature",
    )
    if any(name not in fields for name in required) or not fields["q-ak"]:
        raise _garbled()
    return AuthHeader("cos", fields["q-ak"], fields)


# ---------------------------------------------------------------------------------------------
# OSS V1


def oss_v1_string_to_sign(req: SignedRequest) -> str:
    headers = req.headers
    date = headers.get("x-oss-date") or headers.get("date", "")
    oss_headers = "".join(
        f"{name}:{value}\n" for name, value in sorted(_prefixed(headers, "x-oss-"))
    )
    sub = sorted((k, v) for k, v in req.query if k in OSS_V1_SUBRESOURCES)
    sub_string = ("?" + "&".join(f"{k}={v}" if v else k for k, v in sub)) if sub else ""
    resource = f"/{req.bucket}/{req.key}{sub_string}"
    return "\n".join(
        [
            req.method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            date,
            oss_headers + resource,
        ]
    )


def oss_v1_signature(secret: str, string_to_sign: str) -> str:
    mac = hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def verify_oss_v1(req: SignedRequest, auth: AuthHeader, secret: str, now: float) -> None:
    date = req.headers.get("x-oss-date") or req.headers.get("date")
    if not date:
        raise AuthError(403, "AccessDenied", "OSS authentication requires a valid Date.")
    _check_skew(_parse_http_or_iso_date(date), now, "oss")
    string_to_sign = oss_v1_string_to_sign(req)
    expected = oss_v1_signature(secret, string_to_sign)
    if not hmac.compare_digest(expected.encode(), auth.fields["Signature"].encode()):
        raise _oss_signature_mismatch(auth, string_to_sign)


# ---------------------------------------------------------------------------------------------
# OSS V4


def v4_uri_encode(text: str, keep_slash: bool) -> str:
    return quote(text.encode(), safe=_UNRESERVED + ("/" if keep_slash else ""))


def oss_v4_canonical_request(req: SignedRequest, additional_headers: Sequence[str]) -> str:
    uri = v4_uri_encode(f"/{req.bucket}/{req.key}", keep_slash=True)
    params = sorted((v4_uri_encode(k, False), v4_uri_encode(v, False)) for k, v in req.query)
    query = "&".join(f"{k}={v}" if v else k for k, v in params)
    extra = set(additional_headers)
    signed = sorted(
        (name, value)
        for name, value in req.headers.items()
        if name.startswith("x-oss-") or name in ("content-type", "content-md5") or name in extra
    )
    headers = "".join(f"{name}:{value}\n" for name, value in signed)
    payload = req.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")
    return "\n".join([req.method, uri, query, headers, ";".join(sorted(extra)), payload])


def oss_v4_string_to_sign(canonical_request: str, date_time: str, scope: str) -> str:
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    return f"{_V4_ALGORITHM}\n{date_time}\n{scope}\n{digest}"


def oss_v4_signature(secret: str, date: str, region: str, string_to_sign: str) -> str:
    key = ("aliyun_v4" + secret).encode()
    for part in (date, region, "oss", _V4_TERMINATOR):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify_oss_v4(req: SignedRequest, auth: AuthHeader, secret: str, now: float) -> None:
    f = auth.fields
    date_time = req.headers.get("x-oss-date", "")
    signed_at = _parse_iso_basic(date_time)
    if signed_at is None:
        raise AuthError(
            403, "AccessDenied", "V4 requests need an x-oss-date of form YYYYMMDDTHHMMSSZ."
        )
    if f["Product"] != "oss" or f["Terminator"] != _V4_TERMINATOR or f["Date"] != date_time[:8]:
        raise AuthError(403, "AccessDenied", "Invalid credential scope in Authorization header.")
    _check_skew(signed_at, now, "oss")
    payload = req.headers.get("x-oss-content-sha256")
    if payload is None:
        raise AuthError(403, "AccessDenied", "Missing x-oss-content-sha256 header.")
    if payload != "UNSIGNED-PAYLOAD" and req.body_sha256 is not None and payload != req.body_sha256:
        raise AuthError(400, "InvalidArgument", "x-oss-content-sha256 does not match the body.")
    additional = [h.strip().lower() for h in f["AdditionalHeaders"].split(";") if h.strip()]
    canonical = oss_v4_canonical_request(req, additional)
    scope = f"{f['Date']}/{f['Region']}/oss/{_V4_TERMINATOR}"
    string_to_sign = oss_v4_string_to_sign(canonical, date_time, scope)
    expected = oss_v4_signature(secret, f["Date"], f["Region"], string_to_sign)
    if not hmac.compare_digest(expected.encode(), f["Signature"].encode()):
        raise _oss_signature_mismatch(auth, string_to_sign, CanonicalRequest=canonical)


def _oss_signature_mismatch(auth: AuthHeader, string_to_sign: str, **extra: str) -> AuthError:
    return AuthError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        OSSAccessKeyId=auth.access_key_id,
        SignatureProvided=auth.fields["Signature"],
        StringToSign=string_to_sign,
        StringToSignBytes=" ".join(f"{b:02x}" for b in string_to_sign.encode()),
        **extra,
    )


# ---------------------------------------------------------------------------------------------
# COS q-sign


def _cos_quote(text: str) -> str:
    return quote(text.encode(), safe=_UNRESERVED)


def cos_http_string(
    req: SignedRequest, header_names: Sequence[str], param_names: Sequence[str]
) -> str:
    """The HttpString over exactly the headers and parameters the client listed."""
    headers = {_cos_quote(k).lower(): _cos_quote(v) for k, v in req.headers.items()}
    params: dict[str, str] = {}
    for k, v in req.query:
        params.setdefault(_cos_quote(k).lower(), _cos_quote(v))
    for name in header_names:
        if name not in headers:
            raise AuthError(403, "SignatureDoesNotMatch", f"Signed header {name!r} is missing.")
    for name in param_names:
        if name not in params:
            raise AuthError(403, "SignatureDoesNotMatch", f"Signed parameter {name!r} is missing.")
    param_string = "&".join(f"{n}={params[n]}" for n in sorted(param_names))
    header_string = "&".join(f"{n}={headers[n]}" for n in sorted(header_names))
    path = req.key if req.key.startswith("/") else "/" + req.key
    return f"{req.method.lower()}\n{path}\n{param_string}\n{header_string}\n"


def cos_signature(secret: str, key_time: str, sign_time: str, http_string: str) -> str:
    sign_key = hmac.new(secret.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    string_to_sign = f"sha1\n{sign_time}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


def verify_cos(req: SignedRequest, auth: AuthHeader, secret: str, now: float) -> None:
    f = auth.fields
    if f["q-sign-algorithm"] != "sha1":
        raise AuthError(403, "AccessDenied", "q-sign-algorithm must be sha1.")
    start, end = _cos_window(f["q-sign-time"])
    key_start, key_end = _cos_window(f["q-key-time"])
    if now > min(end, key_end):
        raise AuthError(403, "AccessDenied", "Request has expired.")
    if now < max(start, key_start):
        raise AuthError(403, "RequestTimeTooSkewed", "Request sign time is in the future.")
    header_names = [n for n in f["q-header-list"].split(";") if n]
    for name in header_names:
        if not (
            name in COS_SIGNABLE_HEADERS or name.startswith("x-cos-") or name.startswith("x-ci-")
        ):
            raise AuthError(403, "AccessDenied", f"Header {name!r} may not be signed.")
    param_names = [n for n in f["q-url-param-list"].split(";") if n]
    http_string = cos_http_string(req, header_names, param_names)
    expected = cos_signature(secret, f["q-key-time"], f["q-sign-time"], http_string)
    if not hmac.compare_digest(expected.encode(), f["q-signature"].encode()):
        raise AuthError(
            403,
            "SignatureDoesNotMatch",
            "The Signature you specified is invalid.",
            FormatString=http_string,
        )


def _cos_window(value: str) -> tuple[int, int]:
    start, sep, end = value.partition(";")
    try:
        window = int(start), int(end)
    except ValueError:
        raise _garbled() from None
    if not sep or window[0] > window[1]:
        raise _garbled()
    return window


# ---------------------------------------------------------------------------------------------
# Shared helpers


def _prefixed(headers: Mapping[str, str], prefix: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.startswith(prefix)]


def _check_skew(signed_at: float | None, now: float, vendor: str) -> None:
    if signed_at is None:
        raise AuthError(403, "AccessDenied", "The request date could not be parsed.")
    if abs(now - signed_at) > MAX_CLOCK_SKEW_SECONDS:
        raise AuthError(
            403,
            "RequestTimeTooSkewed",
            "The difference between the request time and the current time is too large.",
            RequestTime=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(signed_at)),
            ServerTime=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now)),
            MaxAllowedSkewMilliseconds=str(MAX_CLOCK_SKEW_SECONDS * 1000),
        )


def _parse_http_or_iso_date(value: str) -> float | None:
    iso = _parse_iso_basic(value)
    if iso is not None:
        return iso
    parsed = parsedate_tz(value)
    if parsed is None:
        return None
    return calendar.timegm(parsed[:9]) - (parsed[9] or 0)


def _parse_iso_basic(value: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None
