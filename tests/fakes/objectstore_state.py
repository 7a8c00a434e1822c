"""What the object-store emulator remembers: buckets and objects, fault plan, counters.

Everything here is guarded by one lock per structure because the HTTP server answers each
connection on its own thread.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

import anycrc

# CRC-64/ECMA-182 as OSS and COS report it (reflected, init and xorout all ones: "CRC-64/XZ" in
# the RevEng catalogue). anycrc (Mark Adler's crcany), not the target's fastcrc, so the emulator
# checks the target with an implementation of its own; both are pinned to crcmod and oss2 in
# tests/runtime/test_oss_target_writer.py. 0.5 ms per 8 MiB here: crcmod's C extension took 16 ms,
# half the emulator's time per 8 MiB PUT, which the benchmarks then measured instead of clients.
crc64_ecma = anycrc.Model("CRC64-XZ").calc


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    content_type: str | None
    # User metadata: lower-case names without the x-oss-meta- / x-cos-meta- prefix.
    metadata: dict[str, str]
    etag: str  # unquoted; upper-case hex for OSS, lower-case for COS, like the services
    # The object headers kept with it (Content-Type, Cache-Control, x-oss-meta-*, ...).
    headers: dict[str, str]
    crc64: int
    last_modified: float
    vendor: Literal["oss", "cos"]


class ObjectTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, dict[str, StoredObject]] = {}

    def create_bucket(self, bucket: str) -> None:
        with self._lock:
            self._buckets.setdefault(bucket, {})

    def has_bucket(self, bucket: str) -> bool:
        with self._lock:
            return bucket in self._buckets

    def buckets(self) -> list[str]:
        with self._lock:
            return sorted(self._buckets)

    def put(self, bucket: str, key: str, obj: StoredObject) -> None:
        with self._lock:
            self._buckets[bucket][key] = obj

    def get(self, bucket: str, key: str) -> StoredObject | None:
        with self._lock:
            return self._buckets.get(bucket, {}).get(key)

    def delete(self, bucket: str, key: str) -> bool:
        with self._lock:
            return self._buckets.get(bucket, {}).pop(key, None) is not None

    def keys(self, bucket: str) -> list[str]:
        with self._lock:
            if bucket not in self._buckets:
                raise KeyError(f"no bucket {bucket!r} in the emulator")
            return sorted(self._buckets[bucket])


@dataclass(frozen=True)
class Fault:
    kind: Literal["fail", "drop", "corrupt-crc"]
    status: int = 0
    code: str = ""


class FaultPlan:
    """Faults to apply to the next object requests. Order: queued faults first, then random ones."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queued: list[Fault] = []
        self._fail_probability = 0.0
        self._fail_status = 503
        self._fail_code = "SlowDown"
        self._fail_rng = random.Random()
        self._drop_probability = 0.0
        self._drop_rng = random.Random()
        self._crc_corruptions = 0
        self.latency = 0.0

    def queue(self, fault: Fault, count: int) -> None:
        if count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._queued.extend([fault] * count)

    def fail_randomly(self, probability: float, status: int, code: str, seed: int | None) -> None:
        _check_probability(probability)
        with self._lock:
            self._fail_probability = probability
            self._fail_status, self._fail_code = status, code
            self._fail_rng = random.Random(seed)

    def drop_randomly(self, probability: float, seed: int | None) -> None:
        _check_probability(probability)
        with self._lock:
            self._drop_probability = probability
            self._drop_rng = random.Random(seed)

    def corrupt_crc(self, count: int) -> None:
        with self._lock:
            self._crc_corruptions += count

    def take_crc_corruption(self) -> bool:
        with self._lock:
            if self._crc_corruptions:
                self._crc_corruptions -= 1
                return True
            return False

    def clear(self) -> None:
        with self._lock:
            self._queued.clear()
            self._fail_probability = self._drop_probability = 0.0
            self._crc_corruptions = 0
            self.latency = 0.0

    def next_fault(self) -> Fault | None:
        with self._lock:
            if self._queued:
                return self._queued.pop(0)
            if self._drop_probability and self._drop_rng.random() < self._drop_probability:
                return Fault("drop")
            if self._fail_probability and self._fail_rng.random() < self._fail_probability:
                return Fault("fail", self._fail_status, self._fail_code)
            return None


def _check_probability(probability: float) -> None:
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be within [0, 1], got {probability}")


@dataclass
class Stats:
    """A snapshot of the counters; also readable as a mapping (`stats["stored"]`)."""

    requests: int = 0  # object requests received (admin routes excluded)
    stored: int = 0  # successful PUTs
    fetched: int = 0  # successful GETs and HEADs
    deleted: int = 0  # successful DELETEs
    drops: int = 0  # connections closed without an answer
    injected: int = 0  # injected 5xx answers
    incomplete: int = 0  # request bodies cut short of their Content-Length (nothing stored)
    errors: dict[str, int] = field(default_factory=dict)  # error answers by vendor code
    by_method: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, name: str):
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "stored": self.stored,
            "fetched": self.fetched,
            "deleted": self.deleted,
            "drops": self.drops,
            "injected": self.injected,
            "incomplete": self.incomplete,
            "errors": dict(self.errors),
            "by_method": dict(self.by_method),
        }


class StatsCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._errors: Counter[str] = Counter()
        self._methods: Counter[str] = Counter()

    def request(self, method: str) -> None:
        with self._lock:
            self._counts["requests"] += 1
            self._methods[method] += 1

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def error(self, code: str) -> None:
        with self._lock:
            self._errors[code] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._errors.clear()
            self._methods.clear()

    def snapshot(self) -> Stats:
        with self._lock:
            c = self._counts
            return Stats(
                requests=c["requests"],
                stored=c["stored"],
                fetched=c["fetched"],
                deleted=c["deleted"],
                drops=c["drops"],
                injected=c["injected"],
                incomplete=c["incomplete"],
                errors=dict(self._errors),
                by_method=dict(self._methods),
            )
