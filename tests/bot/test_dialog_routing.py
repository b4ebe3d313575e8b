"""How citizens get into and out of flows: menu, commands, keywords, switching, /cancel."""

from __future__ import annotations

from bot.clock import ManualClock
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

USER = {"id": 9401, "first_name": "Noor", "language_code": "en"}


async def test_switching_cancelling_and_keywords(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    async with running_bot(database_url, emulator_server.url, ManualClock()) as runtime:
        citizen = Citizen(emulator_server.client, USER)
        await citizen.send("/report", expect="What would you like to report")
        await citizen.tap("💡 Street lighting", expect="Where is it")

        # Another flow while one is open: asked first; "continue" asks the same question again.
        await citizen.send("⭐ Rate a service", expect="Leave it and start “Rate a service”?")
        await citizen.tap("No, continue", expect="Where is it")
        await citizen.send("/volunteer", expect="Leave it and start")
        await citizen.tap("Yes, start", expect="What would you enjoy doing")

        await citizen.send("/cancel", expect="Okay, we stopped here")
        async with runtime.services.database.uow() as uow:
            record = await uow.repos.citizens.by_telegram_id(USER["id"])
            assert record is not None
            assert await uow.repos.sessions.get(record.id) is None
        await citizen.send("/cancel", expect="There is no conversation in progress")
        await citizen.send("/rate", expect="Which service")
        await citizen.send("/skip", expect="Which service")  # not optional: asked again
        await citizen.tap("Water and drainage", expect="Overall, how satisfied")
        await citizen.send("/back", expect="Which service")
        await citizen.send("/cancel", expect="Okay, we stopped here")

        # A keyword in free text starts the matching flow; an unknown command is named.
        await citizen.send("a pothole on my street", expect="What would you like to report")
        await citizen.send("/frobnicate", expect="I do not know that command")
        # The conversation was not lost by the detour.
        await citizen.tap("💡 Street lighting", expect="Where is it")
