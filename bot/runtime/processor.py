"""Runs stored updates: one chat's updates in order, different chats concurrently.

Each chat has a queue drained by one task; a semaphore bounds how many updates
run at the same time across all chats.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from storage.records import IncomingUpdate

log = logging.getLogger(__name__)

UpdateHandler = Callable[[IncomingUpdate], Awaitable[None]]


class UpdateProcessor:
    """Per-chat ordering with bounded concurrency."""

    def __init__(self, handle: UpdateHandler, *, max_concurrency: int) -> None:
        self._handle = handle
        self._slots = asyncio.Semaphore(max_concurrency)
        self._queues: dict[int, deque[IncomingUpdate]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @staticmethod
    def _chat_key(update: IncomingUpdate) -> int:
        # Updates without a chat (rare kinds) still keep a stable key per user.
        if update.chat_id is not None:
            return update.chat_id
        return update.user_id if update.user_id is not None else 0

    def submit(self, update: IncomingUpdate) -> None:
        """Queue an update behind the others of its chat."""
        key = self._chat_key(update)
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)
            return
        self._queues[key] = deque([update])
        self._idle.clear()
        task = asyncio.create_task(self._drain(key), name=f"chat-{key}")
        self._workers.add(task)
        task.add_done_callback(self._worker_done)

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        if not self._workers:
            self._idle.set()

    async def _drain(self, key: int) -> None:
        queue = self._queues[key]
        try:
            while queue:
                update = queue[0]
                async with self._slots:
                    try:
                        await self._handle(update)
                    except Exception:
                        # The handler records failures itself; this is the last guard
                        # so one bad update never stops its chat's queue.
                        log.exception("update %s escaped its handler", update.update_id)
                queue.popleft()
        finally:
            del self._queues[key]

    @property
    def backlog(self) -> int:
        """Updates queued or running."""
        return sum(len(queue) for queue in self._queues.values())

    async def join(self) -> None:
        """Wait until every queued update has been handled."""
        await self._idle.wait()

    async def close(self, grace: float) -> bool:
        """Wait up to ``grace`` seconds for the queues to drain, then cancel the rest.

        Returns True when everything finished. Cancelled updates stay pending in the
        inbox and are handled at the next start.
        """
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            for task in list(self._workers):
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            return False
        return True
