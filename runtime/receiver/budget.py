"""A memory budget in bytes shared by the requests being read and handled (first come, first
served).

Counting requests does not bound memory when bodies differ in size by a factor of 10,000; counting
their bytes does. A request reserves its size before its body is read and releases it when its
answer is ready.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ByteBudget:
    """`capacity` bytes; `acquire(n)` waits (FIFO, so a large request is not starved by small
    ones) until `n` more fit, `release(n)` gives them back. `n` must not exceed `capacity`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def try_acquire(self, size: int) -> bool:
        """Take `size` bytes now if they fit and nobody is waiting; False otherwise."""
        if not self._waiters and self.used + size <= self.capacity:
            self.used += size
            return True
        return False

    async def acquire(self, size: int) -> None:
        if size > self.capacity:
            raise ValueError(f"{size} bytes can never fit a budget of {self.capacity} bytes")
        if not self._waiters and self.used + size <= self.capacity:
            self.used += size
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release(size)  # granted just as we gave up: give it back
            else:
                if entry in self._waiters:
                    self._waiters.remove(entry)
                self._wake()  # we may have been the head blocking smaller requests
            raise

    def release(self, size: int) -> None:
        self.used -= size
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.used + self._waiters[0][0] <= self.capacity:
            size, waiter = self._waiters.popleft()
            if waiter.done():
                continue
            self.used += size
            waiter.set_result(None)
