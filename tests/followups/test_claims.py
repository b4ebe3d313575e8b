"""Claims: with two bot instances on one database each follow-up runs exactly once, and
what a crashed instance had claimed is taken over when its lease runs out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import Runtime, build_runtime
from bot.clock import ManualClock
from bot.config import Settings
from bot.followups.runner import FollowUpRunner
from bot.followups.schedule import schedule_signup
from storage.db import Database
from storage.models import FollowUp, OutboxMessage
from storage.repositories.volunteering import OpportunityRecord
from tests.followups.support import add_opportunity, followups, queued
from tests.support.botprocess import TEST_TOKEN
from tests.support.emulator import EmulatorServer

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SHIFT = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
REMINDER_DUE = SHIFT - timedelta(hours=24)


@asynccontextmanager
async def instance(database_url: str, api_base: str, clock: ManualClock) -> AsyncIterator[Runtime]:
    """One bot instance's services on the shared database (its own engine and pool)."""
    runtime = build_runtime(
        Settings(database_url=database_url),  # type: ignore[call-arg]
        api_base=api_base,
        token=TEST_TOKEN,
        clock=clock,
    )
    try:
        yield runtime
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()


async def volunteers(database: Database, count: int, now: datetime) -> OpportunityRecord:
    """``count`` volunteers with a place on one shift, with their reminders scheduled."""
    opportunity = await add_opportunity(database, code="big-day", starts_at=SHIFT, slots=count)
    async with database.uow() as uow:
        for number in range(count):
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=50_000_000 + number,
                language="fr" if number % 3 == 0 else "en",
                first_name=f"V{number}",
                username=None,
                now=now,
            )
            outcome = await uow.repos.volunteering.signup(opportunity.id, citizen.id, now=now)
            assert outcome.status == "confirmed" and outcome.signup_id is not None
            await schedule_signup(
                uow,
                signup_id=outcome.signup_id,
                citizen_id=citizen.id,
                starts_at=opportunity.starts_at,
                ends_at=opportunity.ends_at,
                now=now,
                zone=UTC,
                events=("shift_start",),
            )
    return opportunity


async def test_two_claimers_run_each_of_1000_followups_exactly_once(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(START)
    async with (
        instance(database_url, emulator_server.url, clock) as first,
        instance(database_url, emulator_server.url, clock) as second,
    ):
        await volunteers(first.services.database, 1000, START)
        clock.set(REMINDER_DUE)
        runners = [
            FollowUpRunner(first.services, worker_id="instance-a", batch_size=20),
            FollowUpRunner(second.services, worker_id="instance-b", batch_size=20),
        ]
        started = time.perf_counter()
        claimed = await asyncio.gather(*(runner.run_due() for runner in runners))
        elapsed = time.perf_counter() - started

        database = first.services.database
        async with database.uow() as uow:
            per_worker = dict(
                (
                    await uow.session.execute(
                        select(FollowUp.claimed_by, func.count())
                        .where(FollowUp.rule == "shift_reminder_24h")
                        .group_by(FollowUp.claimed_by)
                    )
                ).all()
            )
            # How many times each row was claimed: the claim itself is exclusive.
            claims = dict(
                (
                    await uow.session.execute(
                        select(FollowUp.attempts, func.count())
                        .where(FollowUp.rule == "shift_reminder_24h")
                        .group_by(FollowUp.attempts)
                    )
                ).all()
            )
            statuses = dict(
                (
                    await uow.session.execute(
                        select(FollowUp.outcome, func.count())
                        .where(FollowUp.rule == "shift_reminder_24h")
                        .group_by(FollowUp.outcome)
                    )
                ).all()
            )
            outbox = (
                await uow.session.execute(
                    select(
                        func.count(),
                        func.count(func.distinct(OutboxMessage.chat_id)),
                        func.count(func.distinct(OutboxMessage.idempotency_key)),
                    ).where(OutboxMessage.kind == "followup")
                )
            ).one()
            later = await uow.session.scalar(
                select(func.count()).where(
                    FollowUp.rule == "shift_reminder_2h", FollowUp.status == "pending"
                )
            )
        print(
            f"\n[{database.url.get_backend_name()}] 1000 due follow-ups, two claimers:"
            f" claimed {claimed}, rows per worker {per_worker}, claims per row {claims},"
            f" outbox rows {tuple(outbox)}, {elapsed:.1f}s"
        )
        assert sum(claimed) == 1000
        assert claims == {1: 1000}
        assert statuses == {"sent": 1000}
        assert tuple(outbox) == (1000, 1000, 1000)
        assert per_worker.keys() == {"instance-a", "instance-b"}
        assert all(count > 0 for count in per_worker.values())
        assert later == 1000  # the 2h reminders are not due yet
        assert await runners[0].run_due() == 0 and await runners[1].run_due() == 0


async def test_a_claim_whose_lease_ran_out_is_taken_over(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(START)
    async with (
        instance(database_url, emulator_server.url, clock) as first,
        instance(database_url, emulator_server.url, clock) as second,
    ):
        await volunteers(first.services.database, 1, START)
        clock.set(REMINDER_DUE)
        crashed = FollowUpRunner(first.services, worker_id="crashed", lease=timedelta(minutes=5))
        survivor = FollowUpRunner(second.services, worker_id="survivor")
        (taken,) = await crashed.claim()  # ... and the process dies before handling it

        clock.advance(timedelta(minutes=4, seconds=59))
        assert await survivor.run_due() == 0  # the lease still holds
        clock.advance(timedelta(seconds=1))
        assert await survivor.run_due() == 1
        (row,) = await followups(second.services.database, rule="shift_reminder_24h")
        assert (row.status, row.outcome, row.claimed_by, row.attempts) == (
            "done",
            "sent",
            "survivor",
            2,
        )
        # Had the first instance only been slow, it finds the row is no longer its own.
        assert await crashed.handle(taken) is None
        assert len(await queued(second.services.database, kind="followup")) == 1


async def test_a_failing_followup_is_retried_then_given_up(
    emulator_server: EmulatorServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(START)
    async with instance(database_url, emulator_server.url, clock) as runtime:
        await volunteers(runtime.services.database, 1, START)
        clock.set(REMINDER_DUE)
        runner = FollowUpRunner(runtime.services, worker_id="w", max_attempts=2)

        async def broken(*_args: object, **_kwargs: object) -> list[int]:
            raise RuntimeError("the outbox is on fire")

        monkeypatch.setattr("bot.followups.runner.enqueue", broken)
        assert await runner.run_due() == 1
        (row,) = await followups(runtime.services.database, rule="shift_reminder_24h")
        assert (row.status, row.outcome, row.attempts) == ("pending", "retrying", 1)
        assert row.due_at == REMINDER_DUE + timedelta(minutes=5)
        assert not await queued(runtime.services.database)  # rolled back with it

        clock.set(row.due_at)
        assert await runner.run_due() == 1
        (row,) = await followups(runtime.services.database, rule="shift_reminder_24h")
        assert (row.status, row.outcome, row.attempts) == ("failed", "error", 2)


async def test_apscheduler_wakes_the_runner_and_so_does_the_signal(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock(START)
    async with instance(database_url, emulator_server.url, clock) as runtime:
        services = runtime.services
        await volunteers(services.database, 1, START)
        runner = FollowUpRunner(services, worker_id="w")
        stopping = asyncio.Event()
        clock.set(REMINDER_DUE)
        task = asyncio.create_task(runner.run(stopping, interval=3600))
        try:
            # The scheduler's first run is at once; the next would be in an hour.
            await asyncio.wait_for(services.signals.outbox_pending.wait(), timeout=10)
            services.signals.outbox_pending.clear()
            assert len(await queued(services.database, kind="followup")) == 1

            clock.set(SHIFT - timedelta(hours=2))
            services.signals.followups_due.set()
            await asyncio.wait_for(services.signals.outbox_pending.wait(), timeout=10)
            assert len(await queued(services.database, kind="followup")) == 2
        finally:
            stopping.set()
            await asyncio.wait_for(task, timeout=10)


async def test_eight_claimers_racing_on_the_same_rows_never_share_one(
    database_url: str,
) -> None:
    """The claim alone, without the work between claims: the tightest race there is."""
    databases = [Database(database_url) for _ in range(8)]
    try:
        await volunteers(databases[0], 1000, START)

        async def claim_until_empty(database: Database, worker: str) -> list[int]:
            taken: list[int] = []
            while True:
                async with database.uow() as uow:
                    batch = await uow.repos.followups.claim_due(
                        now=REMINDER_DUE,
                        worker_id=worker,
                        lease_until=REMINDER_DUE + timedelta(minutes=5),
                        limit=25,
                    )
                if not batch:
                    return taken
                taken += [row.id for row in batch]

        results = await asyncio.gather(
            *(claim_until_empty(db, f"w{n}") for n, db in enumerate(databases))
        )
        everything = [followup_id for result in results for followup_id in result]
        backend = databases[0].url.get_backend_name()
        print(f"\n[{backend}] eight claimers took {[len(r) for r in results]}")
        assert len(everything) == len(set(everything)) == 1000
        assert sum(1 for result in results if result) >= 2
        async with databases[0].uow() as uow:
            attempts = dict(
                (
                    await uow.session.execute(
                        select(FollowUp.attempts, func.count())
                        .where(FollowUp.rule == "shift_reminder_24h")
                        .group_by(FollowUp.attempts)
                    )
                ).all()
            )
        assert attempts == {1: 1000}
    finally:
        for database in databases:
            await database.dispose()
