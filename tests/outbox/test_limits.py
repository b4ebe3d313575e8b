"""The send limiter on virtual time: nothing here sleeps for real."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from bot.config import Settings
from bot.outbox.limits import Pacer, SendLimiter, SlidingWindow, window_for_rate

T = TypeVar("T")


class VirtualTime:
    """A monotonic clock and a sleep that jump to the next timer once every task is waiting."""

    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(seconds, 0.0), next(self._order), future))
        await future

    async def run(self, main: Awaitable[T], *, limit: float = 3600.0) -> T:
        """Run ``main``, moving time forward whenever nothing else can run."""
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        while not task.done():
            # Let every runnable task reach its next wait before time moves. The
            # loop's queue of ready callbacks is private, but it is the only exact
            # way to know that nothing else can run at this instant.
            while loop._ready:  # type: ignore[attr-defined]  # noqa: ASYNC110 - no event exists for "idle"
                await asyncio.sleep(0)
            if task.done():
                break
            if not self._timers:
                raise AssertionError("deadlock: nothing to wait for and nothing runs")
            moment, _, future = heapq.heappop(self._timers)
            if moment > limit:
                raise AssertionError(f"still running at t={moment}")
            self.now = max(self.now, moment)
            if not future.done():
                future.set_result(None)
        return task.result()


def limiter(time: VirtualTime, **rates: float) -> SendLimiter:
    defaults = {"per_second": 30.0, "chat_per_second": 1.0, "group_per_minute": 20.0}
    defaults.update(rates)
    return SendLimiter(**defaults, monotonic=time.monotonic, sleep=time.sleep)


async def send_all(
    time: VirtualTime,
    send_limiter: SendLimiter,
    chats: list[int],
    *,
    latency: float = 0.0,
    on_send: Callable[[int], None] | None = None,
) -> list[tuple[float, float, int]]:
    """Send once to each chat (concurrently); (start, end, chat) of every send."""
    log: list[tuple[float, float, int]] = []

    async def one(chat_id: int) -> None:
        async with send_limiter.sending(chat_id):
            start = time.now
            if on_send is not None:
                on_send(chat_id)
            if latency:
                await time.sleep(latency)
            log.append((start, time.now, chat_id))

    async def everything() -> None:
        await asyncio.gather(*(one(chat) for chat in chats))

    await time.run(everything())
    return sorted(log)


def most_in_any_window(starts: list[float], period: float) -> int:
    """The largest number of ``starts`` inside any half-open window of ``period``."""
    best = 0
    for index, start in enumerate(starts):
        inside = sum(1 for other in starts[index:] if other < start + period)
        best = max(best, inside)
    return best


def test_window_for_rate() -> None:
    assert window_for_rate(30) == (30, 1.0)
    assert window_for_rate(1000) == (1000, 1.0)
    assert window_for_rate(20, 60.0) == (20, 60.0)
    assert window_for_rate(0.5) == (1, 2.0)
    with pytest.raises(ValueError, match="positive"):
        window_for_rate(0)


def test_sliding_window_counts_until_a_period_after_completion() -> None:
    window = SlidingWindow(2, 1.0)
    window.start()
    window.start()
    assert window.wait_time(0.0) is None  # both in flight: only an answer frees a slot
    window.finish(0.5)
    assert window.wait_time(0.5) == pytest.approx(1.0)
    assert window.wait_time(1.5) == 0.0


def test_pacer_spreads_with_a_little_slack() -> None:
    pacer = Pacer(10, slack=0.1)
    pacer.take(0.0)
    assert pacer.wait_time(0.0) == 0.0  # the slack allows one more now
    pacer.take(0.0)
    assert pacer.wait_time(0.0) == pytest.approx(0.1)
    pacer.hold_until(5.0)
    assert pacer.wait_time(0.0) == pytest.approx(5.0)


async def test_overall_rate_is_kept_and_nearly_reached() -> None:
    time = VirtualTime()
    sends = await send_all(time, limiter(time), list(range(1, 301)), latency=0.01)
    starts = [start for start, _, _ in sends]
    assert most_in_any_window(starts, 1.0) <= 30
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert rate > 29.0


async def test_paid_rate() -> None:
    time = VirtualTime()
    sends = await send_all(time, limiter(time, per_second=1000), list(range(1, 3001)))
    starts = [start for start, _, _ in sends]
    assert most_in_any_window(starts, 1.0) <= 1000
    assert (len(starts) - 1) / (starts[-1] - starts[0]) > 990


async def test_slow_answers_never_let_more_than_the_limit_through() -> None:
    """Counting from answers: however late Telegram handles a request, ≤ limit per second."""
    time = VirtualTime()
    handled: list[float] = []
    send_limiter = limiter(time, per_second=5)

    async def one(chat_id: int) -> None:
        async with send_limiter.sending(chat_id):
            # Telegram handles the request at some point before answering: here at
            # the very end, the worst case for a limiter counting from the start.
            await time.sleep(0.3 + 0.1 * (chat_id % 3))
            handled.append(time.now)

    async def everything() -> None:
        await asyncio.gather(*(one(chat) for chat in range(1, 41)))

    await time.run(everything())
    assert most_in_any_window(sorted(handled), 1.0) <= 5


async def test_one_chat_gets_one_message_a_second_in_order() -> None:
    time = VirtualTime()
    order: list[int] = []
    send_limiter = limiter(time)

    async def one(index: int) -> None:
        async with send_limiter.sending(42):
            order.append(index)
            await time.sleep(0.05)

    async def everything() -> None:
        await asyncio.gather(*(one(index) for index in range(5)))

    started = time.now
    await time.run(everything())
    assert order == [0, 1, 2, 3, 4]
    # Each send waits a second after the previous one's answer.
    assert time.now - started == pytest.approx(4 * 1.05 + 0.05)


async def test_a_group_gets_twenty_a_minute() -> None:
    time = VirtualTime()
    sends = await send_all(time, limiter(time), [-100] * 25)
    starts = [start for start, _, _ in sends]
    assert starts[19] < 1.0
    assert starts[20] >= 60.0
    assert most_in_any_window(starts, 60.0) <= 20


async def test_a_pause_stops_everything_then_resumes_evenly() -> None:
    time = VirtualTime()
    send_limiter = limiter(time, per_second=10)

    def maybe_pause(chat_id: int) -> None:
        if chat_id == 5:
            send_limiter.pause(3.0)

    sends = await send_all(time, send_limiter, list(range(1, 21)), on_send=maybe_pause)
    starts = [start for start, _, _ in sends]
    pause_start = next(start for start, _, chat in sends if chat == 5)
    after = [start for start in starts if start > pause_start]
    assert after
    assert min(after) >= pause_start + 3.0
    assert send_limiter.paused_for == 0.0
    assert most_in_any_window(after, 1.0) <= 10


def test_from_settings_picks_the_paid_rate() -> None:
    free = SendLimiter.from_settings(Settings())
    paid = SendLimiter.from_settings(Settings(outbox_paid_broadcast=True))
    assert (free.per_second, paid.per_second) == (30.0, 1000.0)
