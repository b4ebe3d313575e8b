"""The outbox sender against the Bot API emulator, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from datetime import timedelta

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.methods import SendMessage

from bot.emulator.client import FaultRule, RateLimits
from bot.outbox.sender import DEFAULT_LEASE, OutboxSender
from storage.repositories.outbox import DROPPED, FAILED, IN_DOUBT, PENDING, RETRY, SENT
from tests.outbox.conftest import OutboxWorld
from tests.support.botprocess import TEST_TOKEN

SECOND = timedelta(seconds=1)
# Where the emulator enforces no limits and per-chat pacing is not the subject,
# retries need not wait a real second for their chat.
QUICK_CHATS = {"outbox_chat_rate_per_second": 30.0}


def texts(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{index}" for index in range(count)]


async def test_a_drain_at_30_per_second_keeps_the_limit(world: OutboxWorld) -> None:
    """Telegram's default: 30 messages a second overall, never a 429 of our making."""
    await world.client.set_rate_limits(RateLimits())
    people = await world.citizens(120)
    ids = await world.enqueue((user, citizen, texts(f"n{user}", 1)) for user, citizen in people)
    sender = await world.sender()
    async with asyncio.timeout(30):
        assert await sender.drain_once() == 120
    calls = await world.sends()
    assert Counter(call.status for call in calls) == {200: 120}
    times = sorted(call.time for call in calls)
    busiest = max(
        sum(1 for other in times[index:] if other < start + 1.0)
        for index, start in enumerate(times)
    )
    assert busiest <= 30
    # And not far below it: the limiter spends the budget it has.
    assert (len(times) - 1) / (times[-1] - times[0]) > 25
    assert await world.statuses(ids) == {SENT: 120}


async def test_three_thousand_messages_drain_through_flood_control(world: OutboxWorld) -> None:
    """3,000 messages at the paid-broadcast rate, with 429s: none lost, none twice, in order."""
    await world.client.set_rate_limits(RateLimits())
    people = await world.citizens(1000)
    ids = await world.enqueue(
        ((user, citizen, texts(f"b{user}", 3)) for user, citizen in people), kind="broadcast"
    )
    flooded = [user for user, _ in people[::200]]
    for user in flooded:
        await world.client.add_fault(
            FaultRule(method="sendMessage", chat_id=user, error_code=429, retry_after=1)
        )
    sender = await world.sender(settings={"outbox_paid_broadcast": True})
    async with asyncio.timeout(120):
        assert await sender.drain_once() == 3000
    calls = await world.sends()
    statuses = Counter(call.status for call in calls)
    assert statuses == {200: 3000, 429: len(flooded)}
    assert all(call.params.get("allow_paid_broadcast") in (True, "true") for call in calls)
    delivered = await world.delivered()
    assert delivered == {user: texts(f"b{user}", 3) for user, _ in people}
    assert await world.statuses(ids) == {SENT: 3000}
    assert sender.counters.rate_limited == len(flooded)


async def test_a_blocked_citizen_is_marked_unreachable_and_their_queue_dropped(
    world: OutboxWorld,
) -> None:
    (blocker, blocker_id), (other, other_id) = await world.citizens(2)
    await world.client.block(blocker)
    blocked_ids = await world.enqueue([(blocker, blocker_id, texts("x", 3))])
    other_ids = await world.enqueue([(other, other_id, texts("y", 1))])
    sender = await world.sender()
    assert await sender.drain_once() == 1
    assert await world.statuses(blocked_ids) == {DROPPED: 3}
    assert await world.statuses(other_ids) == {SENT: 1}
    calls = await world.client.calls(method="sendMessage", chat_id=blocker)
    assert [call.status for call in calls] == [403]
    async with world.database.uow() as uow:
        citizen = await uow.repos.citizens.by_id(blocker_id)
    assert citizen is not None and citizen.unreachable_at == world.clock.now()
    # What is queued for them later is dropped without a call.
    later = await world.enqueue([(blocker, blocker_id, texts("z", 1))])
    assert await sender.drain_once() == 0
    assert await world.statuses(later) == {DROPPED: 1}
    assert len(await world.client.calls(method="sendMessage", chat_id=blocker)) == 1


async def test_stopped_citizens_are_not_written_to(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    async with world.database.uow() as uow:
        await uow.repos.citizens.set_stopped(citizen_id, world.clock.now())
    ids = await world.enqueue([(user, citizen_id, texts("s", 2))])
    sender = await world.sender()
    assert await sender.drain_once() == 0
    assert await world.statuses(ids) == {DROPPED: 2}
    assert await world.sends() == []


async def test_server_errors_are_retried_with_exponential_backoff(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    first, second = await world.enqueue([(user, citizen_id, ["first", "second"])])
    await world.client.add_fault(
        FaultRule(method="sendMessage", chat_id=user, error_code=502, times=2)
    )
    sender = await world.sender(backoff=2.0, settings=QUICK_CHATS)
    start = world.clock.now()
    assert await sender.drain_once() == 0
    [row] = await world.rows([first])
    assert (row.status, row.attempts, row.not_before - start) == (RETRY, 1, 2 * SECOND)
    # The chat waits for its first message: the second is not overtaking it.
    assert (await world.rows([second]))[0].status == PENDING
    world.advance(2)
    assert await sender.drain_once() == 0
    [row] = await world.rows([first])
    assert (row.attempts, row.not_before - world.clock.now()) == (2, 4 * SECOND)
    world.advance(4)
    assert await sender.drain_once() == 2
    assert await world.delivered() == {user: ["first", "second"]}
    [row] = await world.rows([first])
    assert (row.status, row.attempts) == (SENT, 3)


async def test_a_message_fails_after_max_attempts_and_the_chat_goes_on(
    world: OutboxWorld,
) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    doomed, after = await world.enqueue([(user, citizen_id, ["doomed", "after"])])
    await world.client.add_fault(
        FaultRule(method="sendMessage", chat_id=user, error_code=500, times=3)
    )
    sender = await world.sender(max_attempts=3, backoff=1.0, settings=QUICK_CHATS)
    for _ in range(3):
        await sender.drain_once()
        world.advance(60)
    await sender.drain_once()
    [row] = await world.rows([doomed])
    assert (row.status, row.attempts) == (FAILED, 3)
    assert row.last_error is not None and "after 3 attempts" in row.last_error
    assert await world.statuses([after]) == {SENT: 1}


async def test_bad_requests_fail_at_once(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    bad, good = await world.enqueue([(user, citizen_id, ["", "fine"])])
    sender = await world.sender()
    assert await sender.drain_once() == 1
    [row] = await world.rows([bad])
    assert (row.status, row.attempts) == (FAILED, 1)
    assert row.last_error is not None and "text is empty" in row.last_error
    calls = await world.sends()
    assert [call.status for call in calls] == [400, 200]
    assert await world.statuses([good]) == {SENT: 1}


async def test_a_crash_between_attempt_and_mark_resends_once_in_doubt(
    world: OutboxWorld, caplog: pytest.LogCaptureFixture
) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    [message_id] = await world.enqueue([(user, citizen_id, ["important"])])
    crashed = await world.sender("crashed")
    now = world.clock.now()
    async with world.database.uow() as uow:
        batch = await uow.repos.outbox.claim_due(
            worker_id="crashed", now=now, lease_until=now + DEFAULT_LEASE, limit=10
        )
        await uow.repos.outbox.mark_attempts(
            [m.id for m in batch.messages],
            worker_id="crashed",
            now=now,
            lease_until=now + DEFAULT_LEASE,
        )
    # The worst case: the request reached Telegram, then the process died.
    await world.runtimes[0].bot(SendMessage(chat_id=user, text="important"))

    survivor = await world.sender("survivor")
    assert await survivor.drain_once() == 0  # the lease is still running
    world.advance(DEFAULT_LEASE.total_seconds() + 1)
    with caplog.at_level(logging.WARNING, logger="bot.outbox.sender"):
        assert await survivor.drain_once() == 1
    assert any(IN_DOUBT in record.getMessage() for record in caplog.records)
    [row] = await world.rows([message_id])
    assert row.status == SENT and row.in_doubt
    assert await world.delivered() == {user: ["important", "important"]}

    assert survivor.counters.in_doubt == 1
    assert crashed.counters.sent == 0


async def test_an_in_doubt_resend_left_in_doubt_again_is_failed(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    [message_id] = await world.enqueue([(user, citizen_id, ["once"])])
    # The connection drops after Telegram took the message, twice.
    await world.client.add_fault(
        FaultRule(
            method="sendMessage",
            chat_id=user,
            drop_connection=True,
            after_effect=True,
            times=2,
        )
    )
    sender = await world.sender(backoff=1.0, settings=QUICK_CHATS)
    assert await sender.drain_once() == 0
    [row] = await world.rows([message_id])
    assert (row.status, row.in_doubt) == (RETRY, True)
    world.advance(1)
    assert await sender.drain_once() == 0
    [row] = await world.rows([message_id])
    assert row.status == FAILED
    assert row.last_error is not None and "in doubt twice" in row.last_error
    # The citizen got it twice (the one allowed duplicate), never a third time.
    world.advance(3600)
    assert await sender.drain_once() == 0
    assert await world.received(user) == ["once", "once"]


async def test_no_connection_at_all_is_retried_like_a_server_error(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    [message_id] = await world.enqueue([(user, citizen_id, ["hello"])])
    runtime = await world.runtime()
    # Nothing listens on port 9 of localhost: the request never leaves.
    unreachable = Bot(
        TEST_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base("http://127.0.0.1:9"))
    )
    try:
        sender = OutboxSender(runtime.services, unreachable, worker_id="offline")
        assert await sender.drain_once() == 0
    finally:
        await unreachable.session.close()
    [row] = await world.rows([message_id])
    assert (row.status, row.attempts, row.in_doubt) == (RETRY, 1, False)
    world.advance(1)
    assert await (await world.sender("online")).drain_once() == 1


async def test_two_senders_deliver_every_message_exactly_once_in_order(
    world: OutboxWorld,
) -> None:
    """Two instances on one database (own engines and Bot sessions), running at once."""
    await world.client.set_rate_limits(RateLimits(per_bot_per_second=1000))
    people = await world.citizens(40)
    ids = await world.enqueue((user, citizen, texts(f"t{user}", 3)) for user, citizen in people)
    # A short horizon keeps each instance's claims small, so both get work.
    settings = {"outbox_rate_per_second": 400.0}
    first = await world.sender("instance-a", settings=settings, horizon=0.05)
    second = await world.sender("instance-b", settings=settings, horizon=0.05)
    sent: list[int] = []
    async with asyncio.timeout(60):
        while await world.statuses(ids) != {SENT: 120}:
            sent += await asyncio.gather(first.drain_once(), second.drain_once())
            # A chat one instance wrote to is left to it for a second (the chat's
            # limit); then either may take it.
            world.advance(1)
    assert sum(sent) == 120
    assert first.counters.sent > 0 and second.counters.sent > 0
    assert await world.delivered() == {user: texts(f"t{user}", 3) for user, _ in people}
    # Not a single 429: the instances kept to each chat's limit between them too.
    assert all(call.status == 200 for call in await world.sends())


async def test_each_chat_gets_its_messages_in_order_a_second_apart(world: OutboxWorld) -> None:
    await world.client.set_rate_limits(RateLimits())
    people = await world.citizens(5)
    await world.enqueue((user, citizen, texts(f"o{user}", 4)) for user, citizen in people)
    sender = await world.sender()
    async with asyncio.timeout(30):
        assert await sender.drain_once() == 20
    assert await world.delivered() == {user: texts(f"o{user}", 4) for user, _ in people}
    calls = await world.sends()
    assert all(call.status == 200 for call in calls)
    for user, _ in people:
        times = sorted(call.time for call in calls if call.chat_id == user)
        assert all(later - earlier >= 0.99 for earlier, later in itertools.pairwise(times))


async def test_run_wakes_on_the_signal_and_stops_cleanly(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    sender = await world.sender()
    runtime = world.runtimes[-1]
    stopping = asyncio.Event()
    running = asyncio.create_task(sender.run(stopping))
    try:
        await world.enqueue([(user, citizen_id, ["woken"])])
        runtime.services.signals.outbox_pending.set()
        call = await world.client.wait_for_call("sendMessage", chat_id=user, timeout=10)
        assert call.params["text"] == "woken"
    finally:
        stopping.set()
        async with asyncio.timeout(10):
            await running
    assert sender.counters.sent == 1


async def test_a_restarted_instance_takes_back_its_own_claims(world: OutboxWorld) -> None:
    [(user, citizen_id)] = await world.citizens(1)
    [message_id] = await world.enqueue([(user, citizen_id, ["after restart"])])
    now = world.clock.now()
    async with world.database.uow() as uow:
        await uow.repos.outbox.claim_due(
            worker_id="host-1", now=now, lease_until=now + DEFAULT_LEASE, limit=10
        )
    sender = await world.sender("host-1")
    stopping = asyncio.Event()
    running = asyncio.create_task(sender.run(stopping))
    try:
        call = await world.client.wait_for_call("sendMessage", chat_id=user, timeout=10)
        assert call.params["text"] == "after restart"
    finally:
        stopping.set()
        async with asyncio.timeout(10):
            await running
    assert await world.statuses([message_id]) == {SENT: 1}
