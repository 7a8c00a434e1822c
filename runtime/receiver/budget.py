"""A memory budget in bytes shared by the requests being read and handled, with a lane that small
requests never queue behind large ones for.

Counting requests does not bound memory when bodies differ in size by a factor of 10,000; counting
their bytes does. A request reserves its size before its body is read and releases it when its
answer is ready.

Small requests (at most SMALL_REQUEST_BYTES, which every CloudEvent of a COS record is) and large
ones wait in separate first-come-first-served queues, and large ones may fill the budget only up
to `capacity - capacity // SMALL_LANE_FRACTION`: a wall of large reservations whose bodies never
come (wrong signature, no key needed; held until the body deadline) cannot delay a small request,
and filling the whole budget with small ones takes SMALL_LANE_FRACTION x more connections. A
large request larger than its share is still admitted when nothing else is in flight.
"""

from __future__ import annotations

import asyncio
from collections import deque

SMALL_REQUEST_BYTES = 64 * 1024
SMALL_LANE_FRACTION = 8


class ByteBudget:
    """`capacity` bytes; `acquire(n)` waits until `n` more fit (FIFO among requests of its size
    class, so a large request is not starved by a later large one), `release(n)` gives them back.
    `n` must not exceed `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        # Only small requests may use the last `capacity // SMALL_LANE_FRACTION` bytes.
        self.large_limit = capacity - capacity // SMALL_LANE_FRACTION
        self._small: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._large: deque[tuple[int, asyncio.Future[None]]] = deque()

    def _queue(self, lane_size: int) -> deque[tuple[int, asyncio.Future[None]]]:
        return self._small if lane_size <= SMALL_REQUEST_BYTES else self._large

    def _fits(self, size: int, queue: deque[tuple[int, asyncio.Future[None]]]) -> bool:
        if queue is self._small:
            return self.used + size <= self.capacity
        return self.used + size <= self.large_limit or self.used == 0

    def try_acquire(self, size: int, *, lane_size: int | None = None) -> bool:
        """Take `size` bytes now if they fit and nobody of its size class is waiting. The class
        is that of `lane_size` (default `size`): a small request whose parsing cost is reserved
        after its body was read keeps its small lane."""
        queue = self._queue(size if lane_size is None else lane_size)
        if not queue and self._fits(size, queue):
            self.used += size
            return True
        return False

    async def acquire(
        self, size: int, *, first: bool = False, lane_size: int | None = None
    ) -> None:
        """Wait until `size` bytes fit. `first` puts the request at the head of the queue (a
        request whose body is already in memory and only needs its handling cost)."""
        if size > self.capacity:
            raise ValueError(f"{size} bytes can never fit a budget of {self.capacity} bytes")
        if self.try_acquire(size, lane_size=lane_size):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        queue = self._queue(size if lane_size is None else lane_size)
        if first:
            queue.appendleft(entry)
        else:
            queue.append(entry)
        # Ahead of everyone in its lane, it may already fit.
        self._wake()
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted just as we gave up: give it back
            else:
                if entry in queue:
                    queue.remove(entry)
                self._wake()  # we may have been the head blocking smaller requests
            raise

    @property
    def waiting(self) -> int:
        """Requests waiting for room, both lanes."""
        return len(self._small) + len(self._large)

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        for queue in (self._small, self._large):
            while queue and self._fits(queue[0][0], queue):
                size, waiter = queue.popleft()
                if waiter.done():
                    continue
                self.used += size
                waiter.set_result(None)
