"""Coordinators see shifts and their volunteers; administrators move and cancel them."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.clock import ManualClock
from bot.emulator.client import EmulatorClient
from bot.outbox.sender import OutboxSender
from storage.models import AuditEntry
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9701, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9702, "first_name": "Max", "username": "max_shifts", "language_code": "en"}
VOLUNTEERS = [{"id": 9710 + n, "first_name": f"Vol{n}", "language_code": "en"} for n in range(3)]


async def button_with(client: EmulatorClient, chat_id: int, fragment: str) -> str:
    """The label of the newest button containing ``fragment`` (labels carry the date)."""
    history = await client.history(chat_id)
    labels = [text for m in history.bot_messages for text in m.button_texts if fragment in text]
    assert labels, f"no button with {fragment!r}"
    return labels[-1]


async def test_shifts_details_move_and_cancel(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    settings = {"admin_ids": (ADMIN["id"],), "timezone": "Europe/Paris"}
    async with running_bot(database_url, emulator_server.url, clock, **settings) as runtime:
        client = emulator_server.client
        admin, manager = Citizen(client, ADMIN), Citizen(client, MANAGER)
        volunteers = [Citizen(client, user) for user in VOLUNTEERS]
        await admin.send("/start", expect="Hello Ada")
        await manager.send("/start", expect="Hello Max")
        for volunteer in volunteers:
            await volunteer.send("/start", expect="Hello Vol")
        await admin.send("/grant manager @max_shifts parks", expect="is now manager")
        database = runtime.services.database
        async with database.uow() as uow:
            cleanup = await uow.repos.volunteering.opportunity_by_code("park-cleanup")
            assert cleanup is not None and cleanup.slots == 12
            async with asyncio.timeout(5):
                for user in VOLUNTEERS:
                    record = await uow.repos.citizens.by_telegram_id(user["id"])
                    assert record is not None
                    await uow.repos.volunteering.signup(cleanup.id, record.id, now=clock.now())
            pseudonyms = [
                (await uow.repos.citizens.by_telegram_id(user["id"])).pseudonym  # type: ignore[union-attr]
                for user in VOLUNTEERS
            ]

        # A citizen may not look; a manager may look but not act.
        await volunteers[0].send("/shifts", expect="staff only")
        await manager.send("/shifts", expect="3/12 signed up")
        await manager.tap(await button_with(client, manager.id, "clean-up"), expect="Signed up (3)")
        await manager.send("/moveshift park-cleanup 2030-01-01 10:00", expect="Only administrators")

        listing = await admin.send("/shifts", expect="Saturday park clean-up")
        assert "3/12 signed up, 0 waiting" in listing.content
        label = await button_with(client, admin.id, "clean-up")
        details = await admin.tap(label, expect="Signed up (3)")
        assert all(pseudonym in details.content for pseudonym in pseudonyms)
        assert "Vol0" not in details.content  # pseudonyms, not names

        await admin.send("/moveshift park-cleanup tomorrow 10:00", expect="Use: /moveshift")
        moved_to = (cleanup.starts_at + timedelta(days=1)).astimezone(ZoneInfo("Europe/Paris"))
        day = moved_to.strftime("%Y-%m-%d")
        await admin.send(f"/moveshift park-cleanup {day} 10:00", expect="3 volunteer(s) told")

        await admin.tap("Cancel this shift", expect="Every signed-up volunteer is told")
        await admin.tap("Yes, cancel it", expect="3 volunteer(s) told")

        sender = OutboxSender(runtime.services, runtime.bot, worker_id="t")
        async with asyncio.timeout(60):
            for _ in range(4):
                await sender.drain_once()
                clock.advance(timedelta(seconds=2))
        for volunteer in volunteers:
            texts = [m.content for m in (await client.history(volunteer.id)).bot_messages]
            assert sum("Change of time" in text for text in texts) == 1
            assert sum("Cancelled: Saturday park clean-up" in text for text in texts) == 1

        async with database.uow() as uow:
            cancelled = await uow.repos.volunteering.opportunity_by_code("park-cleanup")
            actions = (await uow.session.execute(select(AuditEntry.action))).scalars().all()
        assert cancelled is not None and cancelled.status == "cancelled"
        assert actions.count("opportunity.move") == 1
        assert actions.count("opportunity.cancel") == 1
