"""The update processor: per-chat order, cross-chat concurrency, a bound on both."""

from __future__ import annotations

import asyncio

from bot.runtime.processor import UpdateProcessor
from storage.records import IncomingUpdate


def update(update_id: int, chat_id: int) -> IncomingUpdate:
    return IncomingUpdate(update_id=update_id, chat_id=chat_id, user_id=chat_id, payload={})


async def test_one_chat_is_handled_in_order_while_chats_run_side_by_side() -> None:
    seen: list[tuple[int, int]] = []
    gate = asyncio.Event()
    running: set[int] = set()
    concurrent_chats = 0

    async def handle(item: IncomingUpdate) -> None:
        nonlocal concurrent_chats
        assert item.chat_id is not None
        running.add(item.chat_id)
        concurrent_chats = max(concurrent_chats, len(running))
        if len(running) == 2:
            gate.set()
        await asyncio.wait_for(gate.wait(), 5)
        seen.append((item.chat_id, item.update_id))
        running.discard(item.chat_id)

    processor = UpdateProcessor(handle, max_concurrency=8)
    for update_id, chat in [(1, 10), (2, 20), (3, 10), (4, 10), (5, 20)]:
        processor.submit(update(update_id, chat))
    await asyncio.wait_for(processor.join(), 5)
    assert [u for chat, u in seen if chat == 10] == [1, 3, 4]
    assert [u for chat, u in seen if chat == 20] == [2, 5]
    assert concurrent_chats == 2


async def test_the_concurrency_bound_holds() -> None:
    active = 0
    peak = 0

    async def handle(_item: IncomingUpdate) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0)
        active -= 1

    processor = UpdateProcessor(handle, max_concurrency=3)
    for chat in range(50):
        processor.submit(update(chat, chat))
    await asyncio.wait_for(processor.join(), 5)
    assert peak == 3


async def test_a_failing_update_does_not_stop_its_chat() -> None:
    handled: list[int] = []

    async def handle(item: IncomingUpdate) -> None:
        if item.update_id == 1:
            raise RuntimeError("boom")
        handled.append(item.update_id)

    processor = UpdateProcessor(handle, max_concurrency=2)
    processor.submit(update(1, 5))
    processor.submit(update(2, 5))
    await asyncio.wait_for(processor.join(), 5)
    assert handled == [2]


async def test_close_cancels_what_does_not_finish_in_time() -> None:
    started = asyncio.Event()

    async def handle(_item: IncomingUpdate) -> None:
        started.set()
        await asyncio.Event().wait()

    processor = UpdateProcessor(handle, max_concurrency=1)
    processor.submit(update(1, 1))
    await asyncio.wait_for(started.wait(), 5)
    assert await processor.close(grace=0.01) is False
    assert processor.backlog == 0


async def test_the_backlog_counts_what_is_queued_or_running_and_forgets_the_cancelled() -> None:
    release = asyncio.Event()
    inline_started = asyncio.Event()

    async def handle(item: IncomingUpdate) -> None:
        if item.update_id == 99:
            inline_started.set()
        await release.wait()

    processor = UpdateProcessor(handle, max_concurrency=8)
    for update_id, chat in [(1, 10), (2, 10), (3, 20), (4, 30)]:
        processor.submit(update(update_id, chat))
    inline = processor.start_now(update(99, 40), handle)
    await asyncio.wait_for(inline_started.wait(), 5)
    assert processor.backlog == 5
    release.set()
    await asyncio.wait_for(asyncio.gather(inline, processor.join()), 5)
    assert processor.backlog == 0

    async def never_ends(_item: IncomingUpdate) -> None:
        await asyncio.Event().wait()

    stuck = UpdateProcessor(never_ends, max_concurrency=1)
    for update_id, chat in [(1, 10), (2, 10), (3, 20)]:
        stuck.submit(update(update_id, chat))
    assert stuck.backlog == 3
    assert await stuck.close(grace=0.01) is False
    assert stuck.backlog == 0


async def test_an_update_sending_its_replies_leaves_room_to_run_another_at_once() -> None:
    processor = UpdateProcessor(lambda _item: asyncio.sleep(0), max_concurrency=8, run_now_limit=1)
    started = asyncio.Event()
    committing = asyncio.Event()
    replying = asyncio.Event()
    done = asyncio.Event()

    async def handle(item: IncomingUpdate) -> None:
        started.set()
        await committing.wait()  # the transaction, holding (on SQLite) the write lock
        processor.committed(item)
        replying.set()
        await done.wait()  # the replies' round trips to the Bot API

    first = processor.start_now(update(1, 10), handle)
    async with asyncio.timeout(5):
        await started.wait()
    assert not processor.can_run_now(update(2, 20))  # one update before its commit: full
    assert not processor.can_run_now(update(3, 10))  # its own chat waits behind it
    committing.set()
    async with asyncio.timeout(5):
        await replying.wait()
    assert processor.can_run_now(update(2, 20))
    assert not processor.can_run_now(update(3, 10))
    done.set()
    async with asyncio.timeout(5):
        await first
    # Once it ended it counts no more either way: another chat's update before its
    # commit fills the one place again.
    started.clear()
    committing.clear()
    second = processor.start_now(update(4, 20), handle)
    async with asyncio.timeout(5):
        await started.wait()
    assert not processor.can_run_now(update(5, 30))
    committing.set()
    async with asyncio.timeout(5):
        await second
