"""The relay's replay cache (pure) and its Retry-After reading (pure)."""

import sys
from datetime import datetime, timezone
from email.utils import format_datetime

import pytest

from runtime.relay.forward import retry_after_seconds
from runtime.relay.replay import ReplayCache


def test_an_id_is_remembered_until_its_signature_expires():
    cache = ReplayCache(10)
    cache.remember("a", until=100.0, now=0.0)
    assert cache.seen("a", 99.9)
    assert not cache.seen("a", 100.0)
    assert not cache.seen("b", 50.0)


def test_a_newer_signed_copy_extends_never_shortens():
    cache = ReplayCache(10)
    cache.remember("a", until=100.0, now=0.0)
    cache.remember("a", until=50.0, now=1.0)
    assert cache.seen("a", 99.0)
    cache.remember("a", until=200.0, now=2.0)
    assert cache.seen("a", 150.0)
    cache.full(120.0)  # expires the stale heap entry of 100.0, not the id
    assert cache.seen("a", 150.0)
    assert not cache.seen("a", 200.0)


def test_capacity_bounds_memory_and_counts_forwards_under_way():
    cache = ReplayCache(3)
    for n in range(3):
        cache.remember(f"id-{n}", until=100.0 + n, now=0.0)
    assert cache.full(1.0)
    cache.remember("id-3", until=500.0, now=1.0)  # no room: not stored
    assert len(cache) == 3 and not cache.seen("id-3", 2.0)
    assert not cache.full(100.5)  # id-0 expired
    assert cache.full(100.5, reserved=1)


def test_entries_have_a_fixed_size_whatever_the_id_length():
    cache = ReplayCache(10)
    cache.remember("x" * 10_000, until=10.0, now=0.0)
    [key] = cache._until
    assert len(key) == 16 and sys.getsizeof(key) < 64


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("\u0663", None),
        ("²", None),
        ("-1", None),
        ("1.5", None),
        ("9" * 5000, 3600.0),
        ("86400", 3600.0),
        ("soon", None),
        (format_datetime(datetime.fromtimestamp(NOW + 30, timezone.utc), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, timezone.utc), usegmt=True), 0.0),
        ("Sun, 06 Nov 1994 08:49:37", None),
    ],
)
def test_retry_after_is_read_per_rfc_9110_and_bounded(value, seconds):
    assert retry_after_seconds(value, NOW) == seconds


def test_memory_per_entry_is_what_the_readme_says():
    """README: about 200 bytes per id, 12 MiB at the default 100 events/s (60,000 ids)."""
    import tracemalloc
    import uuid

    ids = [str(uuid.uuid4()) for _ in range(60_000)]
    tracemalloc.start()
    try:
        cache = ReplayCache(60_000)
        for n, event_id in enumerate(ids):
            cache.remember(event_id, until=1000.0 + n, now=0.0)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(cache) == 60_000
    assert used / 60_000 <= 220
    assert used <= 12 * 1024 * 1024
