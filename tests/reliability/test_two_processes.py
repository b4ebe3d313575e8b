"""Two bot processes on one PostgreSQL database share 1,000 due follow-ups (issue #4).

Each reminder reaches its volunteer exactly once, counted in what the emulator
received. One process is killed with SIGKILL while it holds claimed follow-ups; the
other takes them over when their lease runs out. Leases are a few seconds here
(FOLLOWUP_LEASE_SECONDS, OUTBOX_LEASE_SECONDS), and ``tests.support.shortlease``
wakes the workers often enough to notice (no setting reaches those intervals).

While the victim is alive, the emulator answers every sendMessage with 429: a
message the victim handed to Telegram just before dying would otherwise be "in
doubt" and, by the outbox's documented policy, resent once (a possible duplicate
that tests/outbox covers). Refused sends deliver nothing, so here every message
reaches its volunteer exactly once, through whichever process survives.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.emulator.client import FaultRule
from bot.followups.schedule import schedule_signup
from storage.db import Database
from storage.models import FollowUp, OutboxMessage
from tests.followups.support import add_opportunity
from tests.support.botprocess import TEST_TOKEN, BotProcess, free_port
from tests.support.databases import PostgresDatabases
from tests.support.emulator import EmulatorServer

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

VOLUNTEERS = 1000
FIRST_USER = 760_000
RULE = "shift_reminder_24h"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def postgres_url(postgres_databases: PostgresDatabases) -> AsyncIterator[str]:
    """A fresh, migrated PostgreSQL database."""
    url = await postgres_databases.create()
    yield url
    await postgres_databases.drop(url)


def daytime_zone(now: datetime) -> str:
    """A fixed-offset zone where it is now mid-morning to early evening (the
    reminders' delivery window is 08:00-21:00 in the volunteer's zone)."""
    for hours in range(-12, 15):
        name = f"Etc/GMT{-hours:+d}" if hours else "UTC"
        if 9 <= now.astimezone(ZoneInfo(name)).hour <= 19:
            return name
    raise AssertionError("no zone has daytime now")


async def seed(database: Database, now: datetime) -> None:
    """1,000 volunteers with a place on a shift whose 24-hour reminder is due now."""
    shift = now + timedelta(hours=24) - timedelta(minutes=1)
    opportunity = await add_opportunity(database, code="relay", starts_at=shift, slots=VOLUNTEERS)
    async with database.uow() as uow:
        for number in range(VOLUNTEERS):
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=FIRST_USER + number,
                language="en",
                first_name=f"V{number}",
                username=None,
                now=now - timedelta(hours=1),
            )
            signup = await uow.repos.volunteering.signup(
                opportunity.id, citizen.id, now=now - timedelta(hours=1)
            )
            assert signup.signup_id is not None
            await schedule_signup(
                uow,
                signup_id=signup.signup_id,
                citizen_id=citizen.id,
                starts_at=opportunity.starts_at,
                ends_at=opportunity.ends_at,
                now=now - timedelta(hours=1),
                zone=None,
                events=("shift_start",),
            )


async def claims(database: Database) -> dict[tuple[str, str | None], int]:
    """How many reminders are in each (status, claimer)."""
    async with database.uow() as uow:
        rows = await uow.session.execute(
            select(FollowUp.status, FollowUp.claimed_by, func.count())
            .where(FollowUp.rule == RULE)
            .group_by(FollowUp.status, FollowUp.claimed_by)
        )
        return {(status, by): count for status, by, count in rows.all()}


async def wait_until_true(check: object, what: str, timeout: float) -> None:  # noqa: ASYNC109
    """Poll the database ``check`` (an async callable) until it is true."""
    assert callable(check)
    try:
        async with asyncio.timeout(timeout):
            # The database has no change notification: polled, under a deadline.
            while not await check():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"waited {timeout}s for {what}") from None


async def test_two_processes_send_each_of_1000_followups_once_and_survive_a_kill(
    emulator_server: EmulatorServer, postgres_url: str, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    database = Database(postgres_url)
    processes: list[BotProcess] = []
    try:
        world = emulator_server.emulator.hub.world_for_user()
        for number in range(VOLUNTEERS):
            world.ensure_chat(FIRST_USER + number)  # each volunteer has written to the bot

        def bot(name: str) -> BotProcess:
            process = BotProcess(
                {
                    "BOT_TOKEN": TEST_TOKEN,
                    "TELEGRAM_API_BASE": emulator_server.url,
                    "DATABASE_URL": postgres_url,
                    "WEB_HOST": "127.0.0.1",
                    "WEB_PORT": str(free_port()),
                    "TIMEZONE": daytime_zone(now),
                    "OUTBOX_RATE_PER_SECOND": "300",
                    "FOLLOWUP_LEASE_SECONDS": "6",
                    "OUTBOX_LEASE_SECONDS": "20",
                    "TEST_FOLLOWUP_INTERVAL": "0.5",
                    "TEST_OUTBOX_RECOVERY": "0.5",
                    "PYTHONPATH": str(ROOT),
                },
                tmp_path / name,
                module="tests.support.shortlease",
            )
            process.workdir.mkdir()
            processes.append(process)
            return process

        victim, survivor = bot("victim"), bot("survivor")
        # One after the other: two first starts at once race to store the shipped
        # flows (see the report of this suite's author; a product bug).
        await victim.start()
        await survivor.start()
        # The storm starts once both are up, and the reminders fall due (one commit)
        # only then, so the storm is short: an outbox lease shorter than a storm's
        # pauses fails messages that were never delivered (see the suite's report).
        await emulator_server.client.add_fault(
            FaultRule(method="sendMessage", error_code=429, retry_after=1, times=10**6)
        )
        await seed(database, now)
        host = socket.gethostname()[:40]
        victim_id, survivor_id = f"{host}:{victim.pid}", f"{host}:{survivor.pid}"

        async def both_at_work() -> bool:
            seen = await claims(database)
            return seen.get(("claimed", victim_id), 0) > 0 and any(
                by == survivor_id for _, by in seen
            )

        await wait_until_true(both_at_work, "both processes to hold claims", 60)
        assert await victim.kill() == -9
        orphaned = (await claims(database)).get(("claimed", victim_id), 0)
        assert orphaned > 0  # killed mid-batch
        await emulator_server.client.clear_faults()

        async def all_sent() -> bool:
            async with database.uow() as uow:
                sent = await uow.session.scalar(
                    select(func.count()).where(
                        OutboxMessage.kind == "followup", OutboxMessage.status == "sent"
                    )
                )
            return sent == VOLUNTEERS

        try:
            await wait_until_true(all_sent, "every reminder to be sent", 90)
        except AssertionError as error:
            async with database.uow() as uow:
                outbox_statuses = (
                    await uow.session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    )
                ).all()
                failures = (
                    await uow.session.execute(
                        select(OutboxMessage.id, OutboxMessage.last_error, OutboxMessage.attempts)
                        .where(OutboxMessage.status == "failed")
                        .limit(5)
                    )
                ).all()
            tail = "\n".join(line for line in survivor.output if "apscheduler" not in line)
            raise AssertionError(
                f"{error}; follow-ups {await claims(database)}, outbox {outbox_statuses},"
                f" failed {failures};"
                f" the survivor printed:\n{tail}"
            ) from None

        finished = await claims(database)
        async with database.uow() as uow:
            attempts = Counter(
                (
                    await uow.session.scalars(
                        select(FollowUp.attempts).where(FollowUp.rule == RULE)
                    )
                ).all()
            )
            outbox = (
                await uow.session.execute(
                    select(func.count(), func.count(func.distinct(OutboxMessage.chat_id))).where(
                        OutboxMessage.kind == "followup"
                    )
                )
            ).one()
    finally:
        for process in processes:
            await process.stop()
        await database.dispose()

    received: Counter[int] = Counter()
    for number in range(VOLUNTEERS):
        chat = world.chat(FIRST_USER + number)
        assert chat is not None
        received[chat.id] = sum(
            1 for message in chat.messages.values() if message.from_bot and not message.deleted
        )
    print(
        f"\nvictim held {orphaned} claims when killed; follow-ups {finished};"
        f" claims per row {dict(attempts)}; outbox {tuple(outbox)}"
    )
    assert set(received.values()) == {1}  # every volunteer, exactly once
    assert finished.keys() <= {("done", victim_id), ("done", survivor_id)}
    assert sum(finished.values()) == VOLUNTEERS
    assert finished.get(("done", survivor_id), 0) >= orphaned
    assert tuple(outbox) == (VOLUNTEERS, VOLUNTEERS)
    assert attempts[2] >= orphaned  # the orphans were claimed a second time
