"""The outbox sender: delivers queued proactive messages within Telegram's limits.

How a message goes out (the database writes of concurrent sends are batched into
one transaction, see :class:`_Writes`):

1. claimed with a lease, a couple of seconds of sending ahead (``claim_due``);
2. recorded as attempted just before the request (``mark_attempts``);
3. sent through the :class:`~bot.outbox.limits.SendLimiter`;
4. marked with Telegram's message id (``mark_sent``), or with what went wrong.

Outcomes:

* 429: every send pauses for ``retry_after`` and the same request is made again
  (the row stays "sending": Telegram refused it, nothing reached the citizen);
* 5xx, or no connection to Telegram at all: retried after an exponential backoff
  with a cap, and failed after ``max_attempts``. A 5xx is taken to mean that
  Telegram did not deliver;
* 403: the chat refused the bot. The citizen is marked unreachable and every
  unsent message of that chat is dropped;
* 401: the token was revoked; everything pauses and nothing counts as an attempt;
* other 4xx (400 above all): failed at once, never retried;
* a timeout, or a connection lost *after* the request left: the message may have
  been delivered. That is the same doubt as a crash between steps 2 and 4.

**The in-doubt policy.** Telegram has no idempotency key, so a message whose
attempt was recorded but whose outcome is unknown (its sender crashed and its
lease ran out, or the connection dropped mid-request) is resent exactly once and
logged as "in doubt"; its ``last_error`` starts with ``in doubt`` from then on. If
that one resend is left unconfirmed as well, the message is failed, never sent a
third time. A confirmation that arrives late, before the resend was claimed,
cancels the resend. Nothing else is sent twice: every other retry follows an
answer from Telegram (429, 5xx) or a connection that was never made.

A crashed instance's messages come back when their lease runs out; a restarted
instance with the same ``worker_id`` takes its own back at once.

Sends run concurrently up to the overall rate, never two at once to one chat, and
a chat's messages go out in their due order: the claim never hands out a chat
that another worker holds or wrote to less than the chat's interval ago, and here
each chat's messages are sent one after the other. With paid broadcasts on, every
call that supports it carries ``allow_paid_broadcast``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any, TypeVar

from aiogram import Bot
from aiogram import methods as telegram_methods
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.types import Message
from aiohttp import ClientConnectorError
from sqlalchemy.exc import SQLAlchemyError

from bot.outbox import method_from_payload
from bot.outbox.limits import SendLimiter
from bot.runtime.context import Services
from bot.runtime.groupcommit import GroupCommit
from storage.db import UnitOfWork
from storage.repositories.outbox import OutboxRecord

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_LEASE = timedelta(minutes=2)
# Longest 429 pause waited out with the row held as "sending"; a longer one sends
# the row back to the queue so its lease never runs out while it waits.
INLINE_RETRY_AFTER = 30.0
UNAUTHORIZED_PAUSE = 60.0
# Attempts recorded ahead of their send, in seconds of sending at the overall rate.
LOOKAHEAD = 0.25
# Seconds the bookkeeping waits for more to write in the same transaction (well
# within the lookahead: a send never waits for it at full rate).
GATHER = 0.005
_PAID_METHODS = frozenset(
    name
    for name in dir(telegram_methods)
    if isinstance(cls := getattr(telegram_methods, name), type)
    and issubclass(cls, TelegramMethod)
    and "allow_paid_broadcast" in cls.model_fields
)


class Verdict(Enum):
    """What became of one Bot API call."""

    SENT = "sent"
    RATE_LIMITED = "rate limited"
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    FORBIDDEN = "forbidden"
    PERMANENT = "permanent"
    UNAUTHORIZED = "unauthorized"


@dataclass(frozen=True, slots=True)
class SendResult:
    """One call's verdict and what Telegram said."""

    verdict: Verdict
    error: str = ""
    message_id: int | None = None
    retry_after: float = 0.0


@dataclass(slots=True)
class SenderCounters:
    """What this sender did since it was built."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0
    in_doubt: int = 0
    rate_limited: int = 0
    lost: int = 0


class _Chain(Enum):
    NEXT = "next"  # settled: go on with the chat's next message
    HOLD = "hold"  # this message will be retried later: the chat waits for it
    GONE = "gone"  # the chat refused the bot: its other messages are dropped


def _describe(error: TelegramAPIError) -> str:
    """An error for ``last_error``: Telegram's description names the problem, not our text."""
    return f"{type(error).__name__}: {error.message}"


def classify(error: BaseException) -> SendResult:
    """Sort a failed call: retry it later, possibly sent already (ambiguous), or never."""
    if isinstance(error, TelegramRetryAfter):
        return SendResult(Verdict.RATE_LIMITED, _describe(error), retry_after=error.retry_after)
    if isinstance(error, TelegramForbiddenError):
        return SendResult(Verdict.FORBIDDEN, _describe(error))
    if isinstance(error, TelegramServerError):
        return SendResult(Verdict.TRANSIENT, _describe(error))
    if isinstance(error, TelegramUnauthorizedError):
        return SendResult(Verdict.UNAUTHORIZED, _describe(error))
    if isinstance(error, TelegramMigrateToChat):
        return SendResult(
            Verdict.PERMANENT, f"group moved to chat {error.migrate_to_chat_id}: not resent"
        )
    if isinstance(error, TelegramEntityTooLarge):
        return SendResult(Verdict.PERMANENT, _describe(error))
    if isinstance(error, TelegramNetworkError):
        if isinstance(error.__cause__, ClientConnectorError):
            # No connection was made, so the request never left.
            return SendResult(Verdict.TRANSIENT, _describe(error))
        return SendResult(Verdict.AMBIGUOUS, _describe(error))
    if isinstance(error, ClientDecodeError):
        return SendResult(Verdict.AMBIGUOUS, f"ClientDecodeError: {error.message}")
    if isinstance(error, TelegramAPIError):
        return SendResult(Verdict.PERMANENT, _describe(error))
    return SendResult(Verdict.PERMANENT, f"{type(error).__name__}: {error}")


def message_id_of(result: object) -> int | None:
    """The id of the message a successful call created, if any."""
    if isinstance(result, Message):
        return result.message_id
    if isinstance(result, list) and result and isinstance(result[0], Message):
        return result[0].message_id
    return None


@dataclass(frozen=True, slots=True)
class _Attempt:
    message_id: int


@dataclass(frozen=True, slots=True)
class _Sent:
    message_id: int
    telegram_message_id: int | None


_Write = _Attempt | _Sent | Callable[[UnitOfWork], Awaitable[Any]]


def _retry_bookkeeping(error: Exception, attempt: int) -> float | None:
    # A sent message whose mark was lost would come back "in doubt" and be sent again:
    # a database hiccup is worth waiting out (about 6 s in all).
    if not isinstance(error, SQLAlchemyError | OSError) or attempt >= 8:
        return None
    return min(0.05 * 2.0 ** (attempt - 1), 2.0)


class _Writes:
    """Group commit: the bookkeeping of concurrent sends shares one transaction.

    Under load a transaction carries dozens of rows, so the sender costs the database
    a few transactions per batch of messages, not two per message. A failed
    transaction is retried (see :func:`_retry_bookkeeping`).
    """

    def __init__(self, services: Services, worker_id: str, lease: timedelta) -> None:
        settings = services.settings
        self._chat_gap = timedelta(seconds=1 / settings.outbox_chat_rate_per_second)
        self._group_gap = timedelta(seconds=60 / settings.outbox_group_rate_per_minute)
        self._clock = services.clock
        self._worker_id = worker_id
        self._lease = lease
        database = services.database
        self._group: GroupCommit[_Write, Any] = GroupCommit(
            self._write,
            open=lambda _first: database.uow(),
            name="outbox-writes",
            retry=_retry_bookkeeping,
            # Marks and attempts of a few milliseconds share a transaction. On SQLite,
            # where a transaction holds the event loop for about a millisecond, a
            # 6,000-message paid broadcast otherwise took 3,100 transactions of one
            # or two rows each (669 with the wait, and 860 -> 975 messages a second).
            gather=GATHER,
        )

    @property
    def flushes(self) -> int:
        """Transactions written so far."""
        return self._group.transactions

    async def attempt(self, message_id: int) -> bool:
        """Record an attempt; False when the row is no longer this worker's to send."""
        attempted: bool = await self._group.submit(_Attempt(message_id))
        return attempted

    async def sent(self, message_id: int, telegram_message_id: int | None) -> bool:
        """Record a delivery; False when lease recovery took the row meanwhile."""
        marked: bool = await self._group.submit(_Sent(message_id, telegram_message_id))
        return marked

    async def run(self, write: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Any other write, in the next transaction."""
        result: T = await self._group.submit(write)
        return result

    async def idle(self) -> None:
        """Wait until everything queued is written."""
        await self._group.idle()

    async def _write(self, uow: UnitOfWork, writes: list[_Write]) -> list[Any]:
        now = self._clock.now()
        outbox = uow.repos.outbox
        attempted = await outbox.mark_attempts(
            [write.message_id for write in writes if isinstance(write, _Attempt)],
            worker_id=self._worker_id,
            now=now,
            lease_until=now + self._lease,
        )
        marked = await outbox.mark_sent(
            {
                write.message_id: write.telegram_message_id
                for write in writes
                if isinstance(write, _Sent)
            },
            worker_id=self._worker_id,
            now=now,
            chat_gap=self._chat_gap,
            group_gap=self._group_gap,
        )
        results: list[Any] = []
        for write in writes:
            if isinstance(write, _Attempt):
                results.append(write.message_id in attempted)
            elif isinstance(write, _Sent):
                results.append(write.message_id in marked)
            else:
                results.append(await write(uow))
        return results


class OutboxSender:
    """Claims due outbox rows and delivers them; several instances may share a database.

    ``worker_id`` names this instance in the claims; it must differ between
    instances running at the same time. Keep it stable across restarts of one
    instance (a host name, a pod name) so a restart takes back its own claims at
    once instead of waiting for their leases to expire.

    The limits come from the ``outbox_*`` settings unless a ``limiter`` is given.
    ``lease``: how long a claim or an attempt is held before another instance may
    take the row over (longer than any request can last). A 5xx waits
    ``backoff * 2 ** (attempts - 1)`` seconds, at most ``backoff_cap``, and after
    ``max_attempts`` attempts the message fails. ``horizon``: seconds of sending
    claimed ahead; ``max_claim``: rows per claim statement.

    Each instance keeps the limits on its own: with several instances sending at
    once, give each its share of ``outbox_rate_per_second``. Per-chat limits hold
    across instances (the claim leaves a chat alone for its interval).
    """

    def __init__(
        self,
        services: Services,
        bot: Bot,
        *,
        worker_id: str,
        limiter: SendLimiter | None = None,
        lease: timedelta = DEFAULT_LEASE,
        max_attempts: int = 5,
        backoff: float = 1.0,
        backoff_cap: float = 300.0,
        horizon: float = 2.0,
        max_claim: int = 1000,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        settings = services.settings
        self._services = services
        self._bot = bot
        self.worker_id = worker_id
        self.limiter = limiter or SendLimiter.from_settings(settings)
        self._paid = settings.outbox_paid_broadcast
        self._lease = lease
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._backoff_cap = backoff_cap
        # Claim only what can be sent within `horizon` seconds, so leases stay short
        # and other instances find work; per chat, what its own limit lets through.
        self._target = max(10, min(math.ceil(self.limiter.per_second * horizon), 5 * max_claim))
        self._max_claim = max_claim
        # Room freed by finished sends is refilled by the half, so claims come in
        # batches rather than one row per finished send.
        self._refill_at = max(1, self._target // 2)
        self._per_chat = max(
            1,
            math.ceil(settings.outbox_chat_rate_per_second * horizon),
        )
        self._lookahead = asyncio.Semaphore(max(8, math.ceil(self.limiter.per_second * LOOKAHEAD)))
        self._writes = _Writes(services, worker_id, lease)
        self._started = services.clock.now()
        self._queues: dict[int, deque[OutboxRecord]] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._buffered = 0
        self._room = asyncio.Event()
        self._closing = False
        self.counters = SenderCounters()

    @property
    def flushes(self) -> int:
        """Bookkeeping transactions so far (each covers the writes of many sends)."""
        return self._writes.flushes

    # --- running ---------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event, *, recovery_interval: float = 10.0) -> None:
        """Deliver due messages until ``stopping`` is set.

        Wakes when ``services.signals.outbox_pending`` is set, when sends free room
        for more, and every second; looks for expired leases every
        ``recovery_interval`` seconds. On stopping, messages already handed to
        Telegram are waited for and the others are given back to the queue.
        """
        wake = self._services.signals.outbox_pending
        loop = asyncio.get_running_loop()
        next_recovery = 0.0
        own = True
        forced = True
        try:
            while not stopping.is_set():
                wake.clear()
                self._room.clear()
                try:
                    if loop.time() >= next_recovery:
                        await self.recover(own=own)
                        own = False
                        next_recovery = loop.time() + recovery_interval
                    await self._fill(minimum=1 if forced else self._refill_at)
                except Exception:
                    log.exception("outbox claim failed")
                fired = await _first_of(stopping.wait(), wake.wait(), self._room.wait(), within=1.0)
                forced = fired != 2
        finally:
            await self.close()

    async def drain_once(self) -> int:
        """Send everything due now and wait for it; returns how many messages were delivered.

        Retries scheduled for later stay queued. For tests and one-off commands.
        """
        before = self.counters.sent
        await self.recover()
        while True:
            # Cleared before claiming: a chat finishing meanwhile still wakes the wait.
            self._room.clear()
            claimed = await self._fill(minimum=self._refill_at if self._tasks else 1)
            if not self._tasks:
                if not claimed:
                    break
                continue
            await self._room.wait()
        await self._writes.idle()
        return self.counters.sent - before

    async def close(self, *, grace: float = 10.0) -> None:
        """Stop sending: finish requests in flight, give back the rest of the claims."""
        self._closing = True
        tasks = list(self._tasks.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._writes.idle()

    async def recover(self, *, own: bool = False) -> None:
        """Take back rows of workers whose lease ran out (``own``: this worker's from
        before this sender started, too)."""
        async with self._services.database.uow() as uow:
            recovery = await uow.repos.outbox.recover_expired(
                now=self._services.clock.now(),
                worker_id=self.worker_id if own else None,
                leased_before=self._started + self._lease,
            )
        if recovery.in_doubt:
            self.counters.in_doubt += len(recovery.in_doubt)
            log.warning(
                "%d outbox messages in doubt (attempted, never confirmed), resending once: %s",
                len(recovery.in_doubt),
                _some(recovery.in_doubt),
            )
        if recovery.abandoned:
            self.counters.failed += len(recovery.abandoned)
            log.error(
                "%d outbox messages in doubt a second time, failed without a resend: %s",
                len(recovery.abandoned),
                _some(recovery.abandoned),
            )
        if recovery.released:
            log.info(
                "%d outbox messages claimed by a lost worker queued again: %s",
                len(recovery.released),
                _some(recovery.released),
            )

    # --- claiming --------------------------------------------------------------------------

    async def _fill(self, *, minimum: int = 1) -> int:
        """Claim until ``target`` messages are buffered or nothing more is due.

        Nothing is claimed while fewer than ``minimum`` would fit.
        """
        claimed = 0
        while not self._closing and self._target - self._buffered >= minimum:
            minimum = 1
            limit = min(self._target - self._buffered, self._max_claim)
            now = self._services.clock.now()
            async with self._services.database.uow() as uow:
                batch = await uow.repos.outbox.claim_due(
                    worker_id=self.worker_id,
                    now=now,
                    lease_until=now + self._lease,
                    limit=limit,
                    per_chat_limit=self._per_chat,
                )
            self.counters.dropped += len(batch.dropped)
            for message in batch.messages:
                self._queue(message)
            claimed += len(batch.messages)
            if len(batch.messages) + len(batch.dropped) < limit:
                break
        return claimed

    def _queue(self, message: OutboxRecord) -> None:
        queue = self._queues.setdefault(message.chat_id, deque())
        queue.append(message)
        self._buffered += 1
        if message.chat_id not in self._tasks:
            self._tasks[message.chat_id] = asyncio.create_task(
                self._serve_chat(message.chat_id, queue), name=f"outbox-chat-{message.id}"
            )

    # --- sending ---------------------------------------------------------------------------

    async def _serve_chat(self, chat_id: int, queue: deque[OutboxRecord]) -> None:
        """Send one chat's claimed messages in order, one at a time."""
        try:
            while queue and not self._closing:
                chain = await self._deliver(queue[0])
                queue.popleft()
                self._buffered -= 1
                if chain is _Chain.GONE:
                    # Already dropped in the database with the rest of the chat.
                    self._buffered -= len(queue)
                    queue.clear()
                elif chain is _Chain.HOLD:
                    # The held message must go first when retried: give the rest back.
                    break
        except Exception:
            log.exception("outbox: chat worker stopped")
        finally:
            leftover = [message.id for message in queue]
            queue.clear()
            self._buffered -= len(leftover)
            del self._queues[chat_id]
            del self._tasks[chat_id]
            self._room.set()
            if leftover:
                with contextlib.suppress(Exception):
                    await self._writes.run(
                        lambda uow: uow.repos.outbox.release(leftover, worker_id=self.worker_id)
                    )

    def _method(self, message: OutboxRecord) -> TelegramMethod[Any]:
        payload = message.payload
        if self._paid and message.method in _PAID_METHODS:
            payload = {**payload, "allow_paid_broadcast": True}
        return method_from_payload(message.method, payload)

    async def _deliver(self, message: OutboxRecord) -> _Chain:
        """Attempt one claimed message and record what happened."""
        try:
            method = self._method(message)
        except ValueError as error:
            await self._fail(message, f"unusable stored method: {type(error).__name__}")
            return _Chain.NEXT
        clock = self._services.clock
        async with self.limiter.chat(message.chat_id), self._lookahead:
            # Recorded before the overall limiter is waited for, so the database's
            # latency is not counted against Telegram's window; the lookahead bounds
            # how many recorded attempts wait for their turn (a fraction of a second).
            if not await self._writes.attempt(message.id):
                self.counters.lost += 1
                log.warning("outbox message %s was taken over; not sent", message.id)
                return _Chain.NEXT
            attempted_at = clock.now()
            while True:
                async with self.limiter.overall():
                    held = (clock.now() - attempted_at) > self._lease / 2
                    if not held:
                        try:
                            sent = await self._bot(method)
                            result = SendResult(Verdict.SENT, message_id=message_id_of(sent))
                        except Exception as error:
                            result = classify(error)
                if held:
                    # Flood control (other messages' 429s) held this one for half its
                    # lease: hand it back unsent, before lease recovery would take it
                    # for a send that may have happened and fail it as "in doubt".
                    await self._retry(
                        message,
                        SendResult(Verdict.RATE_LIMITED, "held by flood control: not sent"),
                        delay=0,
                        count_attempt=False,
                    )
                    return _Chain.HOLD
                if result.verdict is not Verdict.RATE_LIMITED:
                    break
                self.counters.rate_limited += 1
                self.limiter.pause(result.retry_after)
                log.warning("Telegram flood control: every send waits %ss", result.retry_after)
                lease_left = (attempted_at + self._lease - clock.now()).total_seconds()
                if result.retry_after > min(INLINE_RETRY_AFTER, lease_left / 2):
                    await self._retry(
                        message, result, delay=result.retry_after, count_attempt=False
                    )
                    return _Chain.HOLD
        return await self._settle(message, result)

    async def _settle(self, message: OutboxRecord, result: SendResult) -> _Chain:
        verdict = result.verdict
        if verdict is Verdict.SENT:
            if await self._writes.sent(message.id, result.message_id):
                self.counters.sent += 1
            else:
                self.counters.lost += 1
                log.warning("outbox message %s sent but its row was taken over", message.id)
            return _Chain.NEXT
        if verdict is Verdict.FORBIDDEN:
            await self._chat_refused(message, result.error)
            return _Chain.GONE
        if verdict is Verdict.PERMANENT:
            await self._fail(message, result.error)
            return _Chain.NEXT
        if verdict is Verdict.UNAUTHORIZED:
            log.error("the Bot API refused the token; outbox sending paused")
            self.limiter.pause(UNAUTHORIZED_PAUSE)
            await self._retry(message, result, delay=UNAUTHORIZED_PAUSE, count_attempt=False)
            return _Chain.HOLD
        if verdict is Verdict.AMBIGUOUS and message.in_doubt:
            await self._fail(message, f"{result.error}; in doubt twice: not resent")
            return _Chain.NEXT
        attempts = message.attempts + 1
        if verdict is Verdict.TRANSIENT and attempts >= self._max_attempts:
            await self._fail(message, f"{result.error} (after {attempts} attempts)")
            return _Chain.NEXT
        delay = min(self._backoff_cap, self._backoff * 2 ** (attempts - 1))
        await self._retry(message, result, delay=delay, in_doubt=verdict is Verdict.AMBIGUOUS)
        return _Chain.HOLD

    async def _retry(
        self,
        message: OutboxRecord,
        result: SendResult,
        *,
        delay: float,
        count_attempt: bool = True,
        in_doubt: bool = False,
    ) -> None:
        not_before = self._services.clock.now() + timedelta(seconds=delay)
        await self._writes.run(
            lambda uow: uow.repos.outbox.mark_retry(
                message.id,
                worker_id=self.worker_id,
                not_before=not_before,
                error=result.error,
                count_attempt=count_attempt,
                in_doubt=in_doubt,
            )
        )
        self.counters.retried += 1
        if in_doubt:
            self.counters.in_doubt += 1
            log.warning(
                "outbox message %s in doubt (%s): resending once in %.0fs",
                message.id,
                result.error,
                delay,
            )
        else:
            log.info("outbox message %s retried in %.0fs (%s)", message.id, delay, result.error)

    async def _fail(self, message: OutboxRecord, error: str) -> None:
        await self._writes.run(
            lambda uow: uow.repos.outbox.mark_failed(
                message.id, worker_id=self.worker_id, error=error
            )
        )
        self.counters.failed += 1
        log.warning("outbox message %s (%s) failed: %s", message.id, message.kind, error)

    async def _chat_refused(self, message: OutboxRecord, error: str) -> None:
        now = self._services.clock.now()

        async def write(uow: UnitOfWork) -> list[int]:
            await uow.repos.outbox.mark_dropped(message.id, worker_id=self.worker_id, reason=error)
            if message.chat_id > 0:
                # A private chat's id is the user's id: the citizen blocked the bot.
                await uow.repos.citizens.set_unreachable(message.chat_id, now)
            return await uow.repos.outbox.drop_chat(message.chat_id, reason=error)

        dropped = await self._writes.run(write)
        self.counters.dropped += 1 + len(dropped)
        log.info(
            "outbox message %s: the chat refused the bot; %d more dropped",
            message.id,
            len(dropped),
        )


def _some(ids: list[int], shown: int = 10) -> str:
    """Ids for a log line, the first few of a long list."""
    head = ", ".join(str(message_id) for message_id in ids[:shown])
    return head + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


async def _first_of(*waits: Awaitable[Any], within: float) -> int | None:
    """Wait for the first of ``waits`` to finish; its index, or None after ``within`` seconds."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        done, _ = await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
        return next((index for index, task in enumerate(tasks) if task in done), None)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
