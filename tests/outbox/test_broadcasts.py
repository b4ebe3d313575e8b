"""Broadcasts through the outbox, against the emulator's rate limits, on both backends."""

from __future__ import annotations

import asyncio
from collections import Counter

from sqlalchemy import select

from bot.emulator.types import RateLimits
from bot.usecases.account import erase_citizen
from bot.usecases.broadcasts import (
    BroadcastMonitor,
    confirm_broadcast,
    set_broadcast_content,
    start_broadcast,
)
from storage.models import AuditEntry
from storage.records import CitizenRecord
from storage.repositories.broadcasts import DONE, Segment
from tests.outbox.conftest import OutboxWorld

TEXT = "The new library opens on Monday"


async def citizen(world: OutboxWorld, citizen_id: int) -> CitizenRecord:
    async with world.database.uow() as uow:
        record = await uow.repos.citizens.by_id(citizen_id)
    assert record is not None
    return record


async def test_a_broadcast_to_two_thousand_reaches_each_eligible_citizen_once(
    world: OutboxWorld,
) -> None:
    people = await world.citizens(2000)
    admin_user, admin_id = people[0]
    stopped, erased, stop_later, blockers = (
        people[1:21],
        people[21:41],
        people[41:61],
        people[61:71],
    )
    now = world.clock.now()
    async with world.database.uow() as uow:
        for _user, citizen_id in stopped:
            await uow.repos.citizens.set_stopped(citizen_id, now)
    for _user, citizen_id in erased:
        record = await citizen(world, citizen_id)
        async with world.database.uow() as uow:
            await erase_citizen(uow, record, now=now)
    for user, _citizen_id in blockers:
        await world.client.block(user)

    # Paid broadcasts: the emulator enforces 1,000/s overall and 1/s per chat.
    await world.client.set_rate_limits(RateLimits(paid_broadcast=True))
    settings = {"outbox_paid_broadcast": True}
    sender = await world.sender(settings=settings)
    services = world.runtimes[-1].services
    admin = await citizen(world, admin_id)
    async with world.database.uow() as uow:
        draft = await start_broadcast(
            uow, admin, chat_id=admin_user, segment=Segment("all"), now=now
        )
    # Everyone still reachable: 2,000 less the stopped and the erased.
    assert draft.audience == 1960
    async with world.database.uow() as uow:
        assert await set_broadcast_content(uow, admin, text=TEXT, photo_file_id=None)
        total = await confirm_broadcast(uow, services, admin, draft.broadcast.id)
    assert total == 1960
    async with world.database.uow() as uow:  # a second press of "Send" queues nothing
        assert await confirm_broadcast(uow, services, admin, draft.broadcast.id) is None
        for _user, citizen_id in stop_later:
            await uow.repos.citizens.set_stopped(citizen_id, now)

    world.advance(600)  # every paced row is due
    monitor = BroadcastMonitor(services, world.runtimes[-1].bot)
    async with asyncio.timeout(120):
        while await monitor.sweep() == 0:
            await sender.drain_once()
            world.advance(2)

    delivered = await world.delivered()
    got_it = Counter(chat for chat, texts in delivered.items() for text in texts if text == TEXT)
    excluded = {user for user, _ in (*stopped, *erased, *stop_later, *blockers)}
    eligible = {user for user, _ in people} - excluded
    assert set(got_it) == eligible
    assert set(got_it.values()) == {1}
    async with world.database.uow() as uow:
        record = await uow.repos.broadcasts.get(draft.broadcast.id)
        audit = (
            (
                await uow.session.execute(
                    select(AuditEntry).where(AuditEntry.action == "broadcast.send")
                )
            )
            .scalars()
            .all()
        )
    assert record is not None and record.status == DONE
    assert record.progress == {
        "delivered": len(eligible),
        "blocked": len(blockers),
        "skipped": len(stop_later),
        "failed": 0,
        "waiting": 0,
    }
    assert [entry.details["recipients"] for entry in audit] == [1960]
    # The final count reaches the administrator through the outbox.
    for _ in range(3):
        await sender.drain_once()
        world.advance(2)
    assert any("finished" in text for text in await world.received(admin_user))


async def test_a_segment_by_language_and_by_skill(world: OutboxWorld) -> None:
    people = await world.citizens(4)
    now = world.clock.now()
    async with world.database.uow() as uow:
        await uow.repos.citizens.set_language(people[1][1], "fr")
        await uow.repos.citizens.set_language(people[2][1], "fr")
        await uow.repos.volunteering.save_profile(
            people[3][1],
            skills=["first_aid"],
            areas=[],
            availability=[],
            contact_consent=False,
            now=now,
        )
        french = await uow.repos.broadcasts.recipients(Segment("language", "fr"))
        medics = await uow.repos.broadcasts.recipients(Segment("skill", "first_aid"))
        nobody = await uow.repos.broadcasts.recipients(Segment("skill", "juggling"))
        unknown = await uow.repos.broadcasts.recipients(Segment("horoscope", "leo"))
    assert [chat for _, chat in french] == [people[1][0], people[2][0]]
    assert [chat for _, chat in medics] == [people[3][0]]
    assert nobody == [] and unknown == []
