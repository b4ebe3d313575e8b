"""Replies collected while an update is handled and sent after its transaction commits.

Sending inside the transaction would hold database locks (on SQLite, the one
write lock) for the length of a network call. A crash between the commit and the
send would lose the replies; that is harmless for a question (the citizen's next
message brings it back: the dialog state was saved) but not for the news that
something was done: a report's number, a sign-up, a waiting-list promotion. Those
are added with ``keep=True`` and also written to the outbox in the update's
transaction, recorded as being sent by this process (:meth:`Outgoing.keep`), and
deleted once sent (:class:`ReplyBook`). If the process dies in between, the outbox's
lease recovery sends them: "in doubt", so such a reply may arrive twice, but it is
never lost. A kept reply that fails for a passing reason (a 429, a 5xx, a timeout)
is handed to the outbox sender, which retries it; the chat's later kept replies
follow it there, in order, and its later questions are not sent (they come back with
the citizen's next message).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import AnswerCallbackQuery, SendChatAction, TelegramMethod

from bot.outbox import method_payload
from bot.outbox.sender import Verdict, classify
from bot.runtime.context import Services
from bot.runtime.groupcommit import GroupCommit
from bot.runtime.tuning import result_unread
from storage.db import UnitOfWork
from storage.records import CitizenRecord

log = logging.getLogger(__name__)

REPLY_KIND = "reply"
# Work an update leaves for after its commit; returns the calls to make then.
Job = Callable[[], Awaitable[Sequence[TelegramMethod[Any]]]]
# Calls worth nothing a moment later: sent, never kept.
_FLEETING = (AnswerCallbackQuery, SendChatAction)
# A reply that failed for a passing reason goes to the outbox sender this much later.
RETRY_DELAY = 1.0
# The longest 429 a reply not kept in the outbox waits out before its one retry.
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True, slots=True)
class Retry:
    """A kept reply handed to the outbox sender to try again."""

    row_id: int
    delay: float
    error: str
    count_attempt: bool = True
    in_doubt: bool = False


@dataclass(slots=True)
class Settlement:
    """What became of an update's kept replies once the calls were made."""

    finished: list[int] = field(default_factory=list)  # sent, or refused for good: delete
    retries: list[Retry] = field(default_factory=list)
    refused: set[int] = field(default_factory=set)  # chats that blocked the bot (403)

    @property
    def empty(self) -> bool:
        """Nothing to write."""
        return not (self.finished or self.retries or self.refused)


class Outgoing:
    """An ordered list of Bot API calls to make once the update's work is saved."""

    def __init__(self) -> None:
        self._methods: list[TelegramMethod[Any]] = []
        self._to_keep: set[int] = set()  # positions in the list
        self._kept: dict[int, int] = {}  # position in the list -> outbox row
        self._jobs: list[Job] = []

    def add(self, method: TelegramMethod[Any], *, keep: bool = False) -> None:
        """Queue a call, e.g. ``out.add(message.answer(text))``; ``keep``: it must
        arrive even if the process dies right after the commit."""
        if keep:
            self._to_keep.add(len(self._methods))
        self._methods.append(method)

    def later(self, job: Job) -> None:
        """Work for after the commit, in the background once the calls are made: a long
        read that must hold no lock nor keep the chat waiting (a digest, an export).
        The calls it returns are made then (not kept)."""
        self._jobs.append(job)

    def take_jobs(self) -> list[Job]:
        """The jobs :meth:`later` queued (the caller runs them); none are left."""
        jobs, self._jobs = self._jobs, []
        return jobs

    @property
    def methods(self) -> list[TelegramMethod[Any]]:
        """The queued calls, in order."""
        return list(self._methods)

    async def keep(
        self,
        uow: UnitOfWork,
        *,
        worker_id: str,
        citizen: CitizenRecord | None,
        now: datetime,
        lease: timedelta,
    ) -> None:
        """Write the calls added with ``keep`` to the outbox as being sent by
        ``worker_id``, in the update's transaction (one statement, none when there are
        none), so that they survive a crash before :meth:`flush`."""
        if not self._to_keep:  # most updates: not even the outbox repository is needed
            self._kept = {}
            return
        rows, positions = [], []
        for position in sorted(self._to_keep):
            method = self._methods[position]
            chat_id = getattr(method, "chat_id", None)
            if not isinstance(chat_id, int) or isinstance(method, _FLEETING):
                continue
            try:
                name, payload = method_payload(method)
            except ValueError:  # a parameter JSON cannot hold: sent, but not kept
                log.debug("%s not kept in the outbox", type(method).__name__, exc_info=True)
                continue
            own = citizen is not None and citizen.telegram_id == chat_id
            rows.append(
                {
                    "chat_id": chat_id,
                    "citizen_id": citizen.id if own and citizen is not None else None,
                    "kind": REPLY_KIND,
                    "method": name,
                    "payload": payload,
                }
            )
            positions.append(position)
        ids = await uow.repos.outbox.start_sending(
            rows, worker_id=worker_id, now=now, lease_until=now + lease
        )
        self._kept = dict(zip(positions, ids, strict=True))

    async def flush(self, bot: Bot) -> Settlement:
        """Make the calls in order; say what became of the kept ones.

        A chat that refuses the bot (403) gets nothing more; "message is not
        modified" is not an error. After a passing failure, the chat's remaining kept
        calls go to the outbox behind the failed one, so their order holds.
        """
        settlement = Settlement()
        held: set[int] = set()  # chats whose calls now wait in the outbox
        methods, self._methods = self._methods, []
        kept, self._kept = self._kept, {}
        self._to_keep = set()
        for position, method in enumerate(methods):
            row = kept.get(position)
            chat_id = getattr(method, "chat_id", None)
            if chat_id in settlement.refused:
                if row is not None:
                    settlement.finished.append(row)
                continue
            if chat_id in held:
                if row is not None:
                    settlement.retries.append(Retry(row, 0.0, "behind a retried reply", False))
                continue
            try:
                await _call(bot, method, wait_out_flood_control=row is None)
            except Exception as error:
                if self._failed(method, error, row, settlement) and isinstance(chat_id, int):
                    held.add(chat_id)
            else:
                if row is not None:
                    settlement.finished.append(row)
        return settlement

    @staticmethod
    def _failed(
        method: TelegramMethod[Any], error: Exception, row: int | None, settlement: Settlement
    ) -> bool:
        """Record a failed call; True when it will be retried (the chat's next calls wait)."""
        result = classify(error)
        name = type(method).__name__
        if result.verdict is Verdict.FORBIDDEN:
            chat_id = getattr(method, "chat_id", None)
            if isinstance(chat_id, int):
                settlement.refused.add(chat_id)
            if row is not None:
                settlement.finished.append(row)
            return False
        if result.verdict is Verdict.PERMANENT:
            if "message is not modified" not in result.error:
                log.warning("%s refused: %s", name, result.error)
            if row is not None:
                settlement.finished.append(row)
            return False
        if row is None:
            log.warning("%s failed: %s", name, result.error)
            return False
        rate_limited = result.verdict is Verdict.RATE_LIMITED
        log.warning("%s failed (%s): the outbox retries it", name, result.error)
        settlement.retries.append(
            Retry(
                row,
                result.retry_after if rate_limited else RETRY_DELAY,
                result.error,
                count_attempt=not rate_limited,
                in_doubt=result.verdict is Verdict.AMBIGUOUS,
            )
        )
        return True


async def _call(bot: Bot, method: TelegramMethod[Any], *, wait_out_flood_control: bool) -> None:
    """Make one call (its result unread); a call not kept in the outbox waits out one
    429 and tries again."""
    with result_unread():
        try:
            await bot(method)
        except TelegramRetryAfter as error:
            if not wait_out_flood_control:
                raise
            await asyncio.sleep(min(float(error.retry_after), MAX_RETRY_AFTER))
            await bot(method)


class ReplyBook:
    """Writes what became of kept replies; concurrent updates share one transaction.

    A failed write is logged and left: the rows stay recorded as being sent, and
    lease recovery resends them once (a possible duplicate, never a loss).
    """

    def __init__(self, services: Services) -> None:
        self._services = services
        database = services.database
        self._group: GroupCommit[Settlement, None] = GroupCommit(
            self._write,
            # Urgent: until it commits, a crash would resend these replies "in doubt".
            open=lambda _first: database.uow(urgent=True),
            name="reply-book",
        )

    async def settle(self, settlement: Settlement) -> None:
        """Record one update's settlement; returns once it is written (or failed)."""
        if settlement.empty:
            return
        try:
            await self._group.submit(settlement)
        except Exception as error:
            log.warning("could not settle sent replies: %s", type(error).__name__)
            return
        if settlement.retries:  # committed: the outbox sender takes them from here
            self._services.signals.outbox_pending.set()

    async def _write(self, uow: UnitOfWork, settlements: list[Settlement]) -> list[None]:
        services = self._services
        worker_id = services.worker_id
        now = services.clock.now()
        outbox = uow.repos.outbox
        retries = [retry for settlement in settlements for retry in settlement.retries]
        refused = {chat for settlement in settlements for chat in settlement.refused}
        await outbox.finish_sent(
            [row for settlement in settlements for row in settlement.finished],
            worker_id=worker_id,
            # Alone (the usual case: every reply sent), the DELETE is atomic by itself.
            begin=bool(retries or refused),
        )
        for retry in retries:
            await outbox.mark_retry(
                retry.row_id,
                worker_id=worker_id,
                not_before=now + timedelta(seconds=retry.delay),
                error=retry.error,
                count_attempt=retry.count_attempt,
                in_doubt=retry.in_doubt,
            )
        for chat_id in refused:
            await uow.repos.citizens.set_unreachable(chat_id, now)
            await outbox.drop_chat(chat_id, reason="the chat refused the bot")
        return [None] * len(settlements)
