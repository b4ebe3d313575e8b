"""Idle conversations: one reminder, then closed — as the clock moves, not by sleeping."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import ManualClock
from bot.outbox.sender import OutboxSender
from bot.usecases.janitor import SessionJanitor
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

USER = {"id": 9301, "first_name": "Iris", "language_code": "en"}


async def test_an_idle_report_is_nudged_once_then_closed(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        janitor = SessionJanitor(runtime.services)
        sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
        citizen = Citizen(emulator_server.client, USER)
        await citizen.send("/report", expect="What would you like to report")
        await citizen.tap("💡 Street lighting", expect="Where is it")

        clock.advance(timedelta(hours=11))
        assert await janitor.sweep() == 0
        clock.advance(timedelta(hours=2))
        assert await janitor.sweep() == 1
        await deliver(sender, clock)
        await emulator_server.client.wait_for_bot_message(
            USER["id"],
            predicate=lambda m: "Still there?" in m.content and "Where is it" in m.content,
        )
        assert await janitor.sweep() == 0  # one reminder only

        clock.advance(timedelta(days=3))
        assert await janitor.sweep() == 1
        await deliver(sender, clock)
        await emulator_server.client.wait_for_bot_message(
            USER["id"], predicate=lambda m: "was closed after a long pause" in m.content
        )
        async with runtime.services.database.uow() as uow:
            citizen_record = await uow.repos.citizens.by_telegram_id(USER["id"])
            assert citizen_record is not None
            assert await uow.repos.sessions.get(citizen_record.id) is None


async def deliver(sender: OutboxSender, clock: ManualClock) -> None:
    """Drain the outbox, letting the (manual) clock pass the 1-per-second chat pacing."""
    for _ in range(4):
        await sender.drain_once()
        clock.advance(timedelta(seconds=2))
