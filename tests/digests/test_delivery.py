"""Subscribed digests reach the outbox at the manager's hour, in their zone, once."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

from bot.clock import ManualClock
from bot.digests.runner import DigestRunner
from bot.digests.schedule import DAILY, WEEKLY, Cadence
from bot.outbox import method_from_payload
from storage.db import Database
from tests.digests.seed import seed_world
from tests.digests.support import add_manager, digest_rows, instance, subscribe

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PARIS = "Europe/Paris"
# Sunday 8 March 2026, noon UTC; Monday 9 March 08:00 in Paris is 07:00 UTC.
SUNDAY_NOON = datetime(2026, 3, 8, 12, tzinfo=UTC)
MONDAY_EIGHT_PARIS = datetime(2026, 3, 9, 7, tzinfo=UTC)


async def test_a_weekly_digest_comes_on_monday_at_eight_in_paris_and_not_before(
    database: Database,
) -> None:
    clock = ManualClock(SUNDAY_NOON)
    async with database.uow() as uow:
        world = await seed_world(uow)
    manager = await add_manager(database, 7001, [world.lights], clock.now())
    cadence = Cadence(frequency=WEEKLY, weekday=0, hour=8, timezone=PARIS)
    subscription = await subscribe(database, manager, cadence, clock.now())
    assert subscription.next_due_at == MONDAY_EIGHT_PARIS

    async with instance(str(database.url.render_as_string(False)), clock) as runtime:
        runner = DigestRunner(runtime.services, worker_id="one")
        assert await runner.run_due() == 0
        clock.set(MONDAY_EIGHT_PARIS - timedelta(seconds=1))
        assert await runner.run_due() == 0
        assert await digest_rows(database) == []

        clock.set(MONDAY_EIGHT_PARIS + timedelta(seconds=20))
        assert await runner.run_due() == 1
        assert runtime.services.signals.outbox_pending.is_set()
        rows = await digest_rows(database)
        assert [(row.chat_id, row.method) for row in rows] == [
            (7001, "SendMessage"),
            (7001, "SendPhoto"),
        ]
        text = rows[0].payload["text"]
        # Local days 2-8 March, lights only (one service: no per-service repeat).
        assert "Digest: " in text and "2" in text
        assert "Roads" not in text and "Parks" not in text
        photo = method_from_payload(rows[1].method, rows[1].payload)
        data = getattr(photo, "photo").data  # noqa: B009 - a BufferedInputFile
        assert data.startswith(PNG_SIGNATURE)
        assert base64.b64decode(rows[1].payload["photo"]["__upload__"]["base64"]) == data

        async with database.uow() as uow:
            saved = await uow.repos.digest_subscriptions.for_citizen(manager.id)
        assert saved is not None
        assert saved.next_due_at == MONDAY_EIGHT_PARIS + timedelta(days=7)
        assert (saved.last_period_start, saved.last_period_end) == (
            datetime(2026, 3, 1, 23, tzinfo=UTC),
            datetime(2026, 3, 8, 23, tzinfo=UTC),
        )
        assert saved.claimed_by is None and saved.attempts == 0
        assert await runner.run_due() == 0

        # Monday 16 March has begun in Paris, but 08:00 has not.
        clock.set(datetime(2026, 3, 15, 23, 30, tzinfo=UTC))
        assert await runner.run_due() == 0
        clock.set(datetime(2026, 3, 16, 7, tzinfo=UTC))
        assert await runner.run_due() == 1
        assert len(await digest_rows(database)) == 4


async def test_a_daily_digest_follows_the_local_hour_across_the_dst_change(
    database: Database,
) -> None:
    # New York moves its clocks forward on Sunday 8 March 2026.
    clock = ManualClock(datetime(2026, 3, 7, 12, tzinfo=UTC))
    async with database.uow() as uow:
        world = await seed_world(uow)
    manager = await add_manager(database, 7002, [world.roads], clock.now())
    cadence = Cadence(frequency=DAILY, hour=18, timezone="America/New_York")
    await subscribe(database, manager, cadence, clock.now())
    async with instance(str(database.url.render_as_string(False)), clock) as runtime:
        runner = DigestRunner(runtime.services, worker_id="one")
        sent_at = []
        for hour in range(12, 24 * 3):
            clock.set(datetime(2026, 3, 7, tzinfo=UTC) + timedelta(hours=hour))
            if await runner.run_due():
                sent_at.append(clock.now())
        # 18:00 EST is 23:00 UTC; 18:00 EDT is 22:00 UTC.
        assert sent_at == [
            datetime(2026, 3, 7, 23, tzinfo=UTC),
            datetime(2026, 3, 8, 22, tzinfo=UTC),
            datetime(2026, 3, 9, 22, tzinfo=UTC),
        ]


async def test_two_claimers_never_send_one_digest_twice(database: Database) -> None:
    clock = ManualClock(SUNDAY_NOON)
    async with database.uow() as uow:
        world = await seed_world(uow)
    cadence = Cadence(frequency=WEEKLY, weekday=0, hour=8, timezone=PARIS)
    count = 8
    for number in range(count):
        manager = await add_manager(database, 7100 + number, [world.lights], clock.now())
        await subscribe(database, manager, cadence, clock.now())
    clock.set(MONDAY_EIGHT_PARIS)
    url = str(database.url.render_as_string(False))
    async with instance(url, clock) as first, instance(url, clock) as second:
        runners = [
            DigestRunner(first.services, worker_id="first", batch_size=2),
            DigestRunner(second.services, worker_id="second", batch_size=2),
        ]
        claimed = await asyncio.gather(*(runner.run_due() for runner in runners))
        assert sum(claimed) == count
        assert all(await asyncio.gather(*(runner.run_due() for runner in runners))) is False
    rows = await digest_rows(database)
    assert len(rows) == 2 * count
    assert sorted(row.chat_id for row in rows) == sorted(
        7100 + number for number in range(count) for _ in range(2)
    )


async def test_a_crashed_claimers_digest_is_taken_over_when_its_lease_runs_out(
    database: Database,
) -> None:
    clock = ManualClock(SUNDAY_NOON)
    async with database.uow() as uow:
        world = await seed_world(uow)
    manager = await add_manager(database, 7003, [world.lights], clock.now())
    cadence = Cadence(frequency=WEEKLY, weekday=0, hour=8, timezone=PARIS)
    await subscribe(database, manager, cadence, clock.now())
    clock.set(MONDAY_EIGHT_PARIS)
    url = str(database.url.render_as_string(False))
    async with instance(url, clock) as runtime:
        crashed = DigestRunner(runtime.services, worker_id="crashed")
        assert len(await crashed.claim()) == 1  # and never handled
        other = DigestRunner(runtime.services, worker_id="other")
        assert await other.run_due() == 0
        clock.advance(crashed.lease + timedelta(seconds=1))
        assert await other.run_due() == 1
    assert len(await digest_rows(database)) == 2


async def test_a_manager_who_lost_the_role_gets_nothing(database: Database) -> None:
    clock = ManualClock(SUNDAY_NOON)
    async with database.uow() as uow:
        world = await seed_world(uow)
    manager = await add_manager(database, 7004, [world.lights], clock.now())
    cadence = Cadence(frequency=WEEKLY, weekday=0, hour=8, timezone=PARIS)
    await subscribe(database, manager, cadence, clock.now())
    async with database.uow() as uow:
        assert await uow.repos.staff.revoke(manager.id) == 1
        assert (await uow.repos.staff.roles_of(manager.id)).service_ids == frozenset()
    clock.set(MONDAY_EIGHT_PARIS)
    async with instance(str(database.url.render_as_string(False)), clock) as runtime:
        runner = DigestRunner(runtime.services, worker_id="one")
        assert await runner.run_due() == 1
    assert await digest_rows(database) == []
    async with database.uow() as uow:
        saved = await uow.repos.digest_subscriptions.for_citizen(manager.id)
    assert saved is not None and saved.next_due_at == MONDAY_EIGHT_PARIS + timedelta(days=7)
