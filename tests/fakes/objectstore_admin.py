"""Unauthenticated admin routes: a separate process (bench, demo) inspects and steers the emulator.

Only reachable with a plain `Host: 127.0.0.1:PORT` (never a COS virtual host, where `/_emulator/...`
would be an object key). `_emulator` is not a valid OSS bucket name, so no object path collides.

    GET  /_emulator/stats                         -> JSON counters
    GET  /_emulator/buckets                       -> JSON list of bucket names
    POST /_emulator/buckets/<bucket>              -> create a bucket (201)
    GET  /_emulator/objects/<bucket>              -> JSON list: key, size, etag, content_type,
                                                     metadata
    GET  /_emulator/object/<bucket>/<key>         -> the stored bytes, its Content-Type, and
                                                     X-Emulator-Metadata: JSON of the user metadata
    POST /_emulator/faults                        -> JSON body, any of:
         {"fail_next": {"n": 3, "status": 503, "code": "SlowDown"},
          "fail_randomly": {"probability": 0.1, "status": 500, "code": "InternalError", "seed": 1},
          "drop_next": 2, "drop_randomly": {"probability": 0.05, "seed": 1},
          "latency": 0.2, "corrupt_crc_next": 1, "clear": true}
    POST /_emulator/reset                         -> drop every object and fault, zero the counters
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote

if TYPE_CHECKING:
    from tests.fakes.objectstore import ObjectStoreEmulator

Response = tuple[int, dict[str, str], bytes]


def handle_admin(
    store: ObjectStoreEmulator, method: str, url: SplitResult, body: bytes
) -> Response:
    route = url.path[len("/_emulator/") :]
    head, _, rest = route.partition("/")
    try:
        if (method, route) == ("GET", "stats"):
            return _json(200, store.stats.as_dict())
        if (method, route) == ("GET", "buckets"):
            return _json(200, store.buckets())
        if (method, head) == ("POST", "buckets") and rest:
            store.create_bucket(unquote(rest))
            return _json(201, {"created": unquote(rest)})
        if (method, head) == ("GET", "objects") and rest:
            return _list_objects(store, unquote(rest))
        if (method, head) == ("GET", "object") and rest:
            return _read_object(store, rest)
        if (method, route) == ("POST", "faults"):
            _apply_faults(store, json.loads(body or b"{}"))
            return _json(200, {"ok": True})
        if (method, route) == ("POST", "reset"):
            store.reset()
            return _json(200, {"ok": True})
    except KeyError as exc:
        return _json(404, {"error": str(exc)})
    except (ValueError, TypeError) as exc:
        return _json(400, {"error": f"{type(exc).__name__}: {exc}"})
    return _json(404, {"error": f"no admin route {method} {url.path}"})


def _list_objects(store: ObjectStoreEmulator, bucket: str) -> Response:
    listing = []
    for key in store.keys(bucket):
        obj = store.get(bucket, key)
        if obj is not None:
            listing.append(
                {
                    "key": key,
                    "size": len(obj.body),
                    "etag": obj.etag,
                    "content_type": obj.content_type,
                    "metadata": obj.metadata,
                }
            )
    return _json(200, listing)


def _read_object(store: ObjectStoreEmulator, rest: str) -> Response:
    bucket, _, key = rest.partition("/")
    obj = store.get(unquote(bucket), unquote(key))
    if obj is None:
        return _json(404, {"error": "no such object"})
    headers = {
        "Content-Type": obj.content_type or "application/octet-stream",
        "X-Emulator-Metadata": json.dumps(obj.metadata, ensure_ascii=True),
        "ETag": f'"{obj.etag}"',
    }
    return 200, headers, obj.body


def _apply_faults(store: ObjectStoreEmulator, spec: dict) -> None:
    if spec.get("clear"):
        store.clear_faults()
    if "fail_next" in spec:
        store.fail_next(**spec["fail_next"])
    if "fail_randomly" in spec:
        store.fail_randomly(**spec["fail_randomly"])
    if "drop_next" in spec:
        store.drop_next(int(spec["drop_next"]))
    if "drop_randomly" in spec:
        store.drop_randomly(**spec["drop_randomly"])
    if "latency" in spec:
        store.set_latency(float(spec["latency"]))
    if "corrupt_crc_next" in spec:
        store.corrupt_crc_next(int(spec["corrupt_crc_next"]))


def _json(status: int, payload: object) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()
