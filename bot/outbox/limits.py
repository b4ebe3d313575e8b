"""Telegram's send limits, kept on our side so that a 429 stays the exception.

Two mechanisms, both per bot:

* a **sliding window** per scope (the whole bot, each chat) that counts a send
  from the moment it starts until ``period`` after its *response* arrived.
  Telegram counts a message when it handles it, somewhere between our request and
  its answer; counting from the answer means no jitter in network or server
  latency can ever put ``limit + 1`` handled sends into one period;
* a **pacer** (GCRA, a token bucket in "theoretical arrival time" form) that
  spreads the bot's sends evenly instead of firing a whole second's budget at
  once, which would only pile up latency.

A 429 pauses every send (:meth:`SendLimiter.pause`): Telegram's flood control is
for the bot, not for one request. Time comes from an injected monotonic clock and
sleep function, so tests run on virtual time.

aiolimiter was considered: it is a single leaky bucket on the event loop's clock,
with no windows counted from completions, no pause and no per-chat keys, and it
cannot be given another clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.config import Settings

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# How far the pacer may run ahead of an even schedule, in seconds of sending.
# Without some slack every late wake-up of the event loop would be lost for good.
PACER_SLACK = 0.1


def window_for_rate(rate: float, period: float = 1.0) -> tuple[int, float]:
    """A (limit, period) window allowing ``rate`` sends per ``period`` seconds.

    Below one send per period the window holds one send for ``period / rate``.
    """
    if rate <= 0:
        raise ValueError("a rate must be positive")
    limit = max(1, math.floor(rate))
    return limit, period * limit / rate


class SlidingWindow:
    """At most ``limit`` sends per ``period``, a send counting until ``period`` after it ends."""

    __slots__ = ("in_flight", "limit", "period", "recent")

    def __init__(self, limit: int, period: float) -> None:
        if limit < 1 or period <= 0:
            raise ValueError("a window needs a positive limit and period")
        self.limit = limit
        self.period = period
        self.in_flight = 0
        self.recent: deque[float] = deque()

    def wait_time(self, now: float) -> float | None:
        """Seconds until a send may start (0 for now); None while only a completion can free one."""
        recent = self.recent
        while recent and recent[0] <= now - self.period:
            recent.popleft()
        if self.in_flight + len(recent) < self.limit:
            return 0.0
        if recent:
            return recent[0] + self.period - now
        return None

    def start(self) -> None:
        """Count a send that starts now."""
        self.in_flight += 1

    def finish(self, now: float) -> None:
        """The send's response arrived at ``now``."""
        self.in_flight -= 1
        self.recent.append(now)

    def idle(self, now: float) -> bool:
        """True when the window remembers nothing that still counts."""
        return self.in_flight == 0 and (not self.recent or self.recent[-1] <= now - self.period)


class Pacer:
    """Spreads sends evenly at ``rate`` per second, allowing ``slack`` seconds of lead."""

    __slots__ = ("_tat", "interval", "slack")

    def __init__(self, rate: float, *, slack: float = PACER_SLACK) -> None:
        if rate <= 0:
            raise ValueError("a rate must be positive")
        self.interval = 1.0 / rate
        self.slack = max(slack, 0.0)
        self._tat = -math.inf  # the theoretical arrival time of the next send

    def wait_time(self, now: float) -> float:
        """Seconds until the next send is due (0 for now)."""
        return max(0.0, self._tat - self.slack - now)

    def take(self, now: float) -> None:
        """Count a send made now."""
        self._tat = max(self._tat, now) + self.interval

    def hold_until(self, moment: float) -> None:
        """Resume at an even pace from ``moment`` (after a pause), not with a burst."""
        self._tat = max(self._tat, moment + self.slack)


class _Chat:
    __slots__ = ("lock", "window")

    def __init__(self, window: SlidingWindow) -> None:
        self.window = window
        self.lock = asyncio.Lock()


class SendLimiter:
    """The bot's overall limit, a limit per private chat and one per group, and 429 pauses.

    ``async with limiter.sending(chat_id):`` waits for a slot, holds it while the
    request runs and counts it from the moment the block exits. It is
    :meth:`chat` then :meth:`overall`, which a caller may separate to do work
    between the two. Sends to one chat are serialised (the second waits for the
    first to finish), and waiting for the overall limit is first come, first served.
    """

    def __init__(
        self,
        *,
        per_second: float,
        chat_per_second: float,
        group_per_minute: float,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._monotonic = monotonic
        self._sleep = sleep
        self._overall = SlidingWindow(*window_for_rate(per_second))
        self._pacer = Pacer(per_second)
        self._private = window_for_rate(chat_per_second)
        self._group = window_for_rate(group_per_minute, 60.0)
        self._chats: dict[int, _Chat] = {}
        self._gate = asyncio.Lock()
        self._completed = asyncio.Event()
        self._paused_until = -math.inf
        self.per_second = per_second

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> SendLimiter:
        """The limits of the ``outbox_*`` settings (paid broadcasts raise the overall one)."""
        overall = (
            settings.outbox_paid_rate_per_second
            if settings.outbox_paid_broadcast
            else settings.outbox_rate_per_second
        )
        return cls(
            per_second=overall,
            chat_per_second=settings.outbox_chat_rate_per_second,
            group_per_minute=settings.outbox_group_rate_per_minute,
            monotonic=monotonic,
            sleep=sleep,
        )

    @property
    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when sending)."""
        return max(0.0, self._paused_until - self._monotonic())

    def pause(self, seconds: float) -> None:
        """Stop every send for ``seconds`` (Telegram answered 429 with this ``retry_after``)."""
        until = self._monotonic() + max(seconds, 0.0)
        if until > self._paused_until:
            self._paused_until = until
            self._pacer.hold_until(until)

    @asynccontextmanager
    async def sending(self, chat_id: int) -> AsyncIterator[None]:
        """Hold a send slot for ``chat_id`` while the block runs (the request to Telegram)."""
        async with self.chat(chat_id), self.overall():
            yield

    @asynccontextmanager
    async def chat(self, chat_id: int) -> AsyncIterator[None]:
        """Take ``chat_id``'s turn: one send at a time per chat, within the chat's limit.

        The send counts for the chat from the moment the block exits.
        """
        chat = self._chat(chat_id)
        async with chat.lock:
            await self._wait_window(chat.window)
            chat.window.start()
            try:
                yield
            finally:
                chat.window.finish(self._monotonic())
        self._forget_idle_chats()

    @asynccontextmanager
    async def overall(self) -> AsyncIterator[None]:
        """Take a slot of the bot's overall limit (after any pause) while the block runs."""
        await self._acquire_overall()
        try:
            yield
        finally:
            self._overall.finish(self._monotonic())
            self._completed.set()

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            limit, period = self._group if chat_id < 0 else self._private
            chat = self._chats[chat_id] = _Chat(SlidingWindow(limit, period))
        return chat

    def _forget_idle_chats(self) -> None:
        # Cheap enough to do now and then: a broadcast touches each chat once.
        if len(self._chats) < 4096:
            return
        now = self._monotonic()
        for chat_id in [c for c, chat in self._chats.items() if not chat.lock.locked()]:
            if self._chats[chat_id].window.idle(now):
                del self._chats[chat_id]

    async def _wait_window(self, window: SlidingWindow) -> None:
        # Only the holder of the chat's lock gets here: a chat's window never has
        # a send in flight at this point, so it always names a time.
        while (wait := window.wait_time(self._monotonic())) != 0.0:
            await self._sleep(wait if wait is not None else 0.0)

    async def _acquire_overall(self) -> None:
        async with self._gate:
            while True:
                now = self._monotonic()
                overall = self._overall.wait_time(now)
                if overall is None:
                    # Every slot is in flight: only an answer can free one.
                    self._completed.clear()
                    await self._completed.wait()
                    continue
                wait = max(overall, self._pacer.wait_time(now), self._paused_until - now)
                if wait <= 0:
                    self._pacer.take(now)
                    self._overall.start()
                    return
                await self._sleep(wait)
