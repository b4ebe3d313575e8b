"""Housekeeping: finished rows older than the retention go; nothing unfinished does."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.usecases.account import erase_citizen
from bot.usecases.housekeeping import Housekeeper
from storage.models import FollowUp, InboxUpdate, OutboxMessage
from storage.records import IncomingUpdate
from storage.repositories.outbox import PENDING, SENT
from tests.outbox.conftest import OutboxWorld

RETENTION = timedelta(days=30)


async def count(world: OutboxWorld, model: type[object], **where: object) -> int:
    async with world.database.uow() as uow:
        statement = select(func.count()).select_from(model)
        for name, value in where.items():
            statement = statement.where(getattr(model, name) == value)
        return int((await uow.session.execute(statement)).scalar_one())


async def follow_up(world: OutboxWorld, citizen_id: int, key: str) -> int:
    async with world.database.uow() as uow:
        new_id = await uow.repos.followups.schedule(
            rule="test",
            citizen_id=citizen_id,
            subject_type="report",
            subject_id=1,
            due_at=world.clock.now(),
            idempotency_key=key,
            payload={},
            now=world.clock.now(),
        )
        assert new_id is not None
        return new_id


async def test_a_sweep_deletes_only_what_finished_before_the_retention(
    world: OutboxWorld,
) -> None:
    (user, citizen), (other_user, other) = await world.citizens(2)
    sender = await world.sender()
    old = await world.enqueue([(user, citizen, ["old news"])])
    async with asyncio.timeout(30):
        assert await sender.drain_once() == 1
    finished = await follow_up(world, citizen, "finished")
    async with world.database.uow() as uow:
        await uow.repos.followups.cancel([finished], outcome="test", now=world.clock.now())
    still_pending = await follow_up(world, other, "pending")
    async with world.database.uow() as uow:
        inbox = uow.repos.inbox
        updates = [
            IncomingUpdate(update_id=n, chat_id=user, user_id=user, payload={}) for n in (1, 2)
        ]
        await inbox.store(updates, world.clock.now())
        await inbox.mark_done(1, world.clock.now())  # update 2 is still to be handled

    world.advance(RETENTION.total_seconds() + 60)
    waiting = await world.enqueue([(other_user, other, ["not sent yet"])])
    housekeeper = Housekeeper(world.runtimes[0].services, retention=RETENTION)
    purged = await housekeeper.sweep()

    assert purged.outbox == 1
    assert purged.followups == 1
    assert purged.inbox == 1
    assert await world.rows(old) == []
    assert [row.status for row in await world.rows(waiting)] == [PENDING]
    assert await count(world, FollowUp, id=finished) == 0
    assert await count(world, FollowUp, id=still_pending) == 1
    assert await count(world, InboxUpdate, update_id=2) == 1
    assert await count(world, InboxUpdate) == 1
    # A second instance sweeping at the same time finds nothing left to do.
    assert (await housekeeper.sweep()).total == 0


async def test_recent_rows_are_kept(world: OutboxWorld) -> None:
    [(user, citizen)] = await world.citizens(1)
    sender = await world.sender()
    sent = await world.enqueue([(user, citizen, ["recent"])])
    async with asyncio.timeout(30):
        assert await sender.drain_once() == 1
    world.advance(RETENTION.total_seconds() - 3600)
    assert (await Housekeeper(world.runtimes[0].services, retention=RETENTION).sweep()).total == 0
    assert [row.status for row in await world.rows(sent)] == [SENT]


async def test_a_retention_shorter_than_telegrams_redelivery_is_refused(
    world: OutboxWorld,
) -> None:
    with pytest.raises(ValueError, match="two days"):
        Housekeeper(world.runtimes[0].services, retention=timedelta(hours=12))


async def test_erasure_drops_every_message_queued_for_the_chat(world: OutboxWorld) -> None:
    [(user, citizen)] = await world.citizens(1)
    # One tied to the citizen's row, one addressed only to their chat.
    await world.enqueue([(user, citizen, ["tied"]), (user, None, ["chat only"])])
    async with world.database.uow() as uow:
        record = await uow.repos.citizens.by_id(citizen)
        assert record is not None
        await erase_citizen(uow, record, now=world.clock.now())
    assert await count(world, OutboxMessage, chat_id=user) == 0
