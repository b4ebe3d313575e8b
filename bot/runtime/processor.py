"""Runs stored updates: one chat's updates in order, different chats concurrently.

Each chat has a queue drained by one task; a semaphore bounds how many updates
run at the same time across all chats. An update of an idle chat can instead run
at once, in a task its caller need not wait for to the end
(:meth:`UpdateProcessor.start_now`): the chat's later updates queue behind it as
usual.
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

    def __init__(
        self, handle: UpdateHandler, *, max_concurrency: int, run_now_limit: int = 4
    ) -> None:
        self._handle = handle
        self._slots = asyncio.Semaphore(max_concurrency)
        self._run_now_limit = run_now_limit
        self._running = 0
        self._queues: dict[int, deque[IncomingUpdate]] = {}
        self._backlog = 0
        self._workers: set[asyncio.Task[None]] = set()
        # Chats whose update, run at once, has committed and is sending its replies.
        self._replying: set[int] = set()
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
        self._backlog += 1
        queue = self._queues.get(key)
        if queue is not None:
            queue.append(update)
            return
        self._queues[key] = deque([update])
        self._idle.clear()
        self._start_worker(key)

    def can_run_now(self, update: IncomingUpdate) -> bool:
        """True when nothing of the update's chat is queued or running and the processor
        is nearly idle (fewer than ``run_now_limit`` updates running that have not
        committed yet, none waiting).

        Whoever runs an update now waits for it; when many run, each waits behind the
        others (on SQLite, for the one write lock), so under load queueing is better.
        """
        return (
            self._running - len(self._replying) < self._run_now_limit
            and not self._slots.locked()
            and self._chat_key(update) not in self._queues
        )

    def start_now(self, update: IncomingUpdate, handle: UpdateHandler) -> asyncio.Task[None]:
        """Run ``handle(update)`` at once, in a task of its own, as its chat's next update.

        Only for a chat with nothing queued (see :meth:`can_run_now`). The chat is taken
        before this returns, so its updates submitted meanwhile (even before the task
        starts) wait behind it. The task's exception is the caller's to read.
        """
        key = self._chat_key(update)
        if key in self._queues:
            raise RuntimeError(f"chat {key} has updates queued: submit instead")
        queue = deque([update])
        self._queues[key] = queue
        self._backlog += 1
        self._idle.clear()
        task = asyncio.create_task(self._run_now(key, queue, handle), name=f"chat-{key}-now")
        self._workers.add(task)  # close() cancels it with the others when time runs out
        task.add_done_callback(self._worker_done)
        return task

    def committed(self, update: IncomingUpdate) -> None:
        """The update running at once (:meth:`start_now`) has committed: while it sends
        its replies it no longer counts against ``run_now_limit``."""
        self._replying.add(self._chat_key(update))

    async def _run_now(self, key: int, queue: deque[IncomingUpdate], handle: UpdateHandler) -> None:
        try:
            async with self._slots:
                self._running += 1
                try:
                    await handle(queue[0])
                finally:
                    self._running -= 1
        finally:
            self._replying.discard(key)
            queue.popleft()
            self._backlog -= 1
            if queue:
                self._start_worker(key)
            else:
                del self._queues[key]
                self._check_idle()

    def _start_worker(self, key: int) -> None:
        task = asyncio.create_task(self._drain(key), name=f"chat-{key}")
        self._workers.add(task)
        task.add_done_callback(self._worker_done)

    def _check_idle(self) -> None:
        if not self._workers:
            self._idle.set()

    def _worker_done(self, task: asyncio.Task[None]) -> None:
        self._workers.discard(task)
        self._check_idle()

    async def _drain(self, key: int) -> None:
        queue = self._queues[key]
        try:
            while queue:
                update = queue[0]
                async with self._slots:
                    self._running += 1
                    try:
                        await self._handle(update)
                    except Exception:
                        # The handler records failures itself; this is the last guard
                        # so one bad update never stops its chat's queue.
                        log.exception("update %s escaped its handler", update.update_id)
                    finally:
                        self._running -= 1
                queue.popleft()
                self._backlog -= 1
        finally:
            self._backlog -= len(queue)  # cancelled: what is left stays pending in the inbox
            del self._queues[key]

    @property
    def backlog(self) -> int:
        """Updates queued or running."""
        return self._backlog

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
