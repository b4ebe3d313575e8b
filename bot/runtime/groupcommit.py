"""Group commit: concurrent callers' small writes share one transaction.

Each caller hands over an item and waits; one writer task at a time opens a unit of
work and only then takes every item waiting (on SQLite, once the write lock is its
own: whoever arrived while the lock was busy joins in), writes them together and
commits. Under load one transaction carries many items instead of one each.

Used for storing incoming updates (:mod:`bot.runtime.inbox`), the outbox sender's
bookkeeping (:mod:`bot.outbox.sender`) and settling kept replies
(:mod:`bot.runtime.outgoing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Generic, TypeVar

from storage.db import UnitOfWork

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

# How a batch is written: the unit of work is open; one result per item, in order.
Write = Callable[[UnitOfWork, list[ItemT]], Awaitable[Sequence[ResultT]]]
# Seconds to wait before trying a failed batch again (its attempt number given), or
# None to give up and hand the error to its callers.
Retry = Callable[[Exception, int], float | None]


def never(_error: Exception, _attempt: int) -> float | None:
    """No second attempt: the callers get the error."""
    return None


class GroupCommit(Generic[ItemT, ResultT]):
    """Writes concurrent callers' items in shared transactions.

    ``open(items)`` gives the unit of work for a batch whose first item is
    ``items[0]`` (it sees only that one: the batch is taken after it opens).
    ``size`` and ``limit`` cap a batch (at least one item is always taken).
    ``gather``: before each batch, let the event loop turn once (0) or wait that many
    seconds, so that callers woken by the previous batch, or arriving meanwhile, join
    the next one. Where a transaction costs the event loop more than its wait (SQLite,
    in place), batches otherwise stay as small as what arrives during one transaction.
    """

    def __init__(
        self,
        write: Write[ItemT, ResultT],
        *,
        open: Callable[[ItemT], AbstractAsyncContextManager[UnitOfWork]],
        name: str,
        retry: Retry = never,
        limit: int | None = None,
        size: Callable[[ItemT], int] = lambda _item: 1,
        gather: float | None = None,
    ) -> None:
        self._write = write
        self._open = open
        self._name = name
        self._retry = retry
        self._limit = limit
        self._size = size
        self._gather = gather
        self._waiting: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0

    async def submit(self, item: ItemT) -> ResultT:
        """Write ``item`` in the next shared transaction; its result once committed.

        Raises what the transaction raised (after the retries) if it failed.
        """
        future: asyncio.Future[ResultT] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting(), name=self._name)
        return await future

    async def idle(self) -> None:
        """Until everything submitted so far is written."""
        while self._writer is not None:
            await asyncio.shield(self._writer)

    def _take(self) -> list[tuple[ItemT, asyncio.Future[ResultT]]]:
        taken, count = 0, 0
        for item, _ in self._waiting:
            size = self._size(item)
            if taken and self._limit is not None and count + size > self._limit:
                break
            taken, count = taken + 1, count + size
        batch, self._waiting = self._waiting[:taken], self._waiting[taken:]
        return batch

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                if self._gather is not None:
                    await asyncio.sleep(self._gather)
                await self._write_batch()
        finally:
            self._writer = None

    async def _write_batch(self) -> None:
        """Take one batch and write it (again, as ``retry`` allows); settle its futures."""
        batch: list[tuple[ItemT, asyncio.Future[ResultT]]] = []
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._open(batch[0][0] if batch else self._waiting[0][0]) as uow:
                    if not batch:
                        batch = self._take()
                    results = await self._write(uow, [item for item, _ in batch])
                self.transactions += 1
            except Exception as error:
                delay = self._retry(error, attempt)
                if delay is None:
                    for _, future in batch or self._take():
                        if not future.done():
                            future.set_exception(error)
                    return
                log.warning("%s failed (%s); retrying", self._name, type(error).__name__)
                await asyncio.sleep(delay)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
            return
