"""The byte budget's lanes (pure): small requests never queue behind large reservations."""

import asyncio

import pytest

from runtime.receiver.budget import SMALL_LANE_FRACTION, SMALL_REQUEST_BYTES, ByteBudget

KIB = 1024
SMALL = 2 * KIB  # a COS event
LARGE = SMALL_REQUEST_BYTES + 1


def test_a_wall_of_large_reservations_leaves_room_for_small_requests():
    """The tester's budget attack: large claims (bodies never sent) fill what they may; a genuine
    small request is still admitted at once, while the next large one waits."""
    budget = ByteBudget(64 * LARGE)
    admitted = 0
    while budget.try_acquire(LARGE):
        admitted += 1
    assert admitted * LARGE <= budget.capacity - budget.capacity // SMALL_LANE_FRACTION
    assert budget.try_acquire(SMALL)
    assert not budget.try_acquire(LARGE)


def test_small_requests_are_not_queued_behind_a_waiting_large_one():
    async def scenario():
        budget = ByteBudget(4 * LARGE)
        budget.used = budget.large_limit  # large claims hold their whole share
        large = asyncio.ensure_future(budget.acquire(LARGE))
        await asyncio.sleep(0)
        assert not large.done()
        await asyncio.wait_for(budget.acquire(SMALL), 1)  # no wait: not behind `large`
        budget.release(SMALL)
        budget.release(budget.large_limit)
        await asyncio.wait_for(large, 1)
        return budget.used

    assert asyncio.run(scenario()) == LARGE


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_first_come_first_served_within_a_size_class(size):
    async def scenario():
        budget = ByteBudget(8 * LARGE)
        budget.used = budget.capacity  # full
        order = []

        async def take(name):
            await budget.acquire(size)
            order.append(name)

        tasks = [asyncio.ensure_future(take(n)) for n in range(3)]
        await asyncio.sleep(0)
        budget.release(budget.capacity)
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(scenario()) == [0, 1, 2]


def test_a_large_request_beyond_its_share_passes_alone():
    budget = ByteBudget(2 * LARGE)
    assert budget.large_limit < 2 * LARGE
    assert budget.try_acquire(2 * LARGE)  # nothing else in flight
    budget.release(2 * LARGE)
    assert budget.try_acquire(SMALL)
    assert not budget.try_acquire(2 * LARGE)
