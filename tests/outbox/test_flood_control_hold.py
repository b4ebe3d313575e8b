"""A message held by flood control past half its lease goes back unsent, not "in doubt"."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from storage.repositories.outbox import SENT
from tests.outbox.conftest import OutboxWorld


async def test_a_long_wait_for_flood_control_hands_the_message_back_unsent(
    world: OutboxWorld,
) -> None:
    [(user, citizen)] = await world.citizens(1)
    sender = await world.sender(lease=timedelta(seconds=4))
    [message] = await world.enqueue([(user, citizen, ["held"])])
    overall = sender.limiter.overall
    waits = []

    @asynccontextmanager
    async def slow_overall() -> AsyncIterator[None]:
        if not waits:  # other messages' 429s kept the first send waiting 3 s of 4
            world.advance(3)
        waits.append(1)
        async with overall():
            yield

    sender.limiter.overall = slow_overall  # type: ignore[method-assign]
    async with asyncio.timeout(30):
        assert await sender.drain_once() == 1
    [row] = await world.rows([message])
    assert row.status == SENT and not row.in_doubt
    # Handed back once unsent (not counted as an attempt), then sent once.
    assert (sender.counters.retried, sender.counters.in_doubt, len(waits)) == (1, 0, 2)
    assert [call.chat_id for call in await world.sends()] == [user]
