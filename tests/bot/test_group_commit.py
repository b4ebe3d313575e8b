"""Group commit: callers that arrive while a transaction opens share it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import pytest

from bot.runtime.groupcommit import GroupCommit
from storage.db import UnitOfWork

UOW = cast(UnitOfWork, object())


class Books:
    """A stand-in database: a gate to open, and a log of what each transaction wrote."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.batches: list[list[int]] = []
        self.failures: list[Exception] = []
        self.opened_for: list[int] = []

    @asynccontextmanager
    async def open(self, first: int) -> AsyncIterator[UnitOfWork]:
        self.opened_for.append(first)
        await self.gate.wait()
        yield UOW

    async def write(self, uow: UnitOfWork, items: list[int]) -> list[int]:
        assert uow is UOW
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(items)
        return [item * 10 for item in items]


async def turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_callers_arriving_while_it_opens_join_the_transaction() -> None:
    books = Books()
    group: GroupCommit[int, int] = GroupCommit(books.write, open=books.open, name="test")
    books.gate.clear()  # the lock is busy
    first = asyncio.create_task(group.submit(1))
    await turns()
    later = []
    for item in range(2, 7):
        later.append(asyncio.create_task(group.submit(item)))
        await turns()
    assert books.batches == []
    books.gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, *later), 5) == [10, 20, 30, 40, 50, 60]
    assert books.batches == [[1, 2, 3, 4, 5, 6]]
    assert books.opened_for == [1]
    assert group.transactions == 1


async def test_a_batch_holds_at_most_the_limit() -> None:
    books = Books()
    group: GroupCommit[int, int] = GroupCommit(
        books.write, open=books.open, name="test", limit=5, size=lambda item: item
    )
    books.gate.clear()
    results = [asyncio.create_task(group.submit(item)) for item in (4, 1, 3, 9, 2)]
    await turns()
    books.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*results), 5) == [40, 10, 30, 90, 20]
    # 4+1 fill a batch; 3 then 9 would not fit; 9 alone is over the limit but goes alone.
    assert books.batches == [[4, 1], [3], [9], [2]]
    assert books.opened_for == [4, 3, 9, 2]


async def test_a_failed_batch_is_retried_as_allowed_then_its_callers_get_the_error() -> None:
    books = Books()
    tries: list[int] = []

    def retry(error: Exception, attempt: int) -> float | None:
        tries.append(attempt)
        return 0 if isinstance(error, OSError) and attempt < 3 else None

    group: GroupCommit[int, int] = GroupCommit(
        books.write, open=books.open, name="test", retry=retry
    )
    books.failures = [OSError("blip"), OSError("blip")]
    assert await asyncio.wait_for(group.submit(1), 5) == 10
    assert tries == [1, 2] and books.batches == [[1]]

    tries.clear()
    books.failures = [ValueError("refused")]
    books.gate.clear()
    doomed = asyncio.create_task(group.submit(2))
    await turns()
    books.gate.set()
    with pytest.raises(ValueError, match="refused"):
        await asyncio.wait_for(doomed, 5)
    assert tries == [1]
    # The next caller is not affected.
    assert await asyncio.wait_for(group.submit(3), 5) == 30
    assert books.batches == [[1], [3]]


async def test_a_unit_of_work_that_cannot_open_fails_the_waiting_callers() -> None:
    books = Books()

    @asynccontextmanager
    async def broken(_first: int) -> AsyncIterator[UnitOfWork]:
        raise ConnectionRefusedError("database down")
        yield UOW  # pragma: no cover

    group: GroupCommit[int, int] = GroupCommit(books.write, open=broken, name="test")
    outcome = await asyncio.wait_for(
        asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True), 5
    )
    assert [type(result) for result in outcome] == [ConnectionRefusedError] * 2
    await group.idle()
    assert books.batches == []


async def test_idle_waits_for_what_was_submitted() -> None:
    books = Books()
    group: GroupCommit[int, int] = GroupCommit(books.write, open=books.open, name="test", gather=0)
    books.gate.clear()
    pending = asyncio.create_task(group.submit(7))
    await turns()
    idle = asyncio.create_task(group.idle())
    await turns()
    assert not idle.done()
    books.gate.set()
    await asyncio.wait_for(idle, 5)
    assert pending.done() and pending.result() == 70


@pytest.mark.parametrize(("gather", "batches"), [(0, [[1], [2]]), (1.0, [[1, 2]])])
async def test_gather_waits_for_callers_before_a_batch(
    gather: float, batches: list[list[int]]
) -> None:
    """One turn of the loop, or a wait: a caller arriving a few turns later joins only the
    wait's batch."""
    books = Books()
    group: GroupCommit[int, int] = GroupCommit(
        books.write, open=books.open, name="test", gather=gather
    )
    first = asyncio.create_task(group.submit(1))
    await turns()
    second = asyncio.create_task(group.submit(2))
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == [10, 20]
    assert books.batches == batches
