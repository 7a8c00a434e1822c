"""The OSS object-key rules, shared by the runtime (keys.py, templates.py) and the Pulumi
component (it checks `keyTemplate` with them). Pure and standard-library only, like bucket_name.py.

A key is refused (400 `invalid-key`, nothing written) when:

- it is not 1-1023 bytes of UTF-8, or starts with `/` or `\\` (OSS object naming conventions);
- it holds a control character (U+0000-U+001F, U+007F-U+009F): they cannot travel in the
  request line and CloudEvents Strings exclude them;
- one of its `/`-separated segments is `.` or `..` (this includes the keys `.` and `..`, and
  `a/.`): the HTTP layers under both OSS SDKs remove dot segments from the URL path (RFC 3986
  5.2.4: urllib3/requests under oss2, yarl/aiohttp under alibabacloud-oss-v2), so the request
  would name another object or the bucket itself and fail as a misleading `NoSuchBucket` or
  signature mismatch. oss2 percent-encodes `/` in keys, so only whole-key `.`/`..` reach the
  URL as dot segments there; alibabacloud-oss-v2 keeps `/`, so every segment does.

Empty segments (`a//b`), a trailing `/` and trailing dots (`a.`, `a..b`) are kept: neither the
SDKs nor their HTTP layers rewrite them, and OSS stores them as named.
"""

import re

MAX_KEY_BYTES = 1023
# A rolled object's name after its group key (batching.py): `YYYYmmddTHHMMSS.ffffffZ` (23), `-`,
# 16 hex digits, then `.ndjson` plus `.gz` / `.zst` when compressed.
ROLLED_NAME_BYTES = {"none": 47, "gzip": 50, "zstd": 51}
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_DOT_SEGMENTS = frozenset({".", ".."})


def key_problem(
    key: str, what: str, max_bytes: int = MAX_KEY_BYTES, complete_segments: str | None = None
) -> str | None:
    """None when `key` can be (the start of) an object key, else why not, naming `what` and never
    echoing the key. `complete_segments`: the part whose `/`-segments are final (default all)."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{what} is not valid Unicode text"
    if size > max_bytes:
        return f"{what} is {size} bytes of UTF-8; OSS allows at most {max_bytes}"
    if key.startswith(("/", "\\")):
        return f"{what} must not start with '/' or '\\'"
    if _CONTROL.search(key):
        return f"{what} must not contain control characters"
    segments = (key if complete_segments is None else complete_segments).split("/")
    if _DOT_SEGMENTS.intersection(segments):
        return f"{what} must not have '.' or '..' as a path segment (HTTP clients would remove it)"
    return None
