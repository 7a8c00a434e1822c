"""Which event ids the relay has already forwarded, for as long as a signed request for them could
still be accepted (pure: the caller passes the clock).

A signed request is accepted while its `webhook-timestamp` is within TOLERANCE_SECONDS of now, so an
id forwarded under timestamp `t` must be remembered until `t + TOLERANCE_SECONDS`; a later signed
copy (the sender's retry, or a capture of it) pushes that moment further. Entries are stored as
16-byte BLAKE2b digests of the id, so an entry costs the same whatever the id's length.

Memory is bounded by `capacity` entries: the relay forwards at most `capacity` new ids per
2 x TOLERANCE_SECONDS (an entry lives at most that long: timestamps up to TOLERANCE_SECONDS in the
future are accepted), i.e. `capacity = max_events_per_second * 2 * TOLERANCE_SECONDS`. When it is
full the relay answers 503 + Retry-After instead of forwarding an event it could not remember.
"""

from __future__ import annotations

import hashlib
import heapq


class ReplayCache:
    """`seen(id, now)`, `remember(id, until, now)`, `full(now)`; about 200 bytes per entry."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._until: dict[bytes, float] = {}
        self._expiry: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._until)

    @staticmethod
    def _key(event_id: str) -> bytes:
        return hashlib.blake2b(event_id.encode("utf-8"), digest_size=16).digest()

    def seen(self, event_id: str, now: float) -> bool:
        """Whether `event_id` was forwarded and is still remembered at `now`."""
        until = self._until.get(self._key(event_id))
        return until is not None and until > now

    def full(self, now: float, reserved: int = 0) -> bool:
        """No room for one more id besides `reserved` ones being forwarded right now (after
        forgetting the expired ones)."""
        self._expire(now)
        return len(self._until) + reserved >= self.capacity

    def remember(self, event_id: str, until: float, now: float) -> None:
        """Remember `event_id` until `until` (extended, never shortened, if already there)."""
        self._expire(now)
        key = self._key(event_id)
        previous = self._until.get(key)
        if previous is not None and previous >= until:
            return
        if previous is None and len(self._until) >= self.capacity:
            return  # unreachable when the caller reserves through full(); never grow past it
        self._until[key] = until
        heapq.heappush(self._expiry, (until, key))

    def _expire(self, now: float) -> None:
        expiry, until = self._expiry, self._until
        while expiry and expiry[0][0] <= now:
            moment, key = heapq.heappop(expiry)
            if until.get(key) == moment:
                del until[key]
