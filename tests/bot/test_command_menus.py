"""Telegram's command menu: every chat lists the flows' and citizens' commands; a staff
member's chat also lists what their role allows, and follows their roles and language."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.app import Runtime, announce_commands
from bot.clock import ManualClock
from bot.commandmenu import ADMIN_MENU, COMMANDS, MANAGER_MENU
from bot.emulator.client import EmulatorClient
from bot.outbox.sender import OutboxSender
from bot.staffmenu import MENU_KIND
from storage.models import OutboxMessage
from storage.repositories.staff import MANAGER, NO_ROLES, StaffRoles
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9701, "first_name": "Ada", "language_code": "en"}
MANAGER_USER = {"id": 9702, "first_name": "Max", "username": "max_menus", "language_code": "en"}
Commands = list[dict[str, str]]


async def delivered(
    runtime: Runtime,
    clock: ManualClock,
    client: EmulatorClient,
    chat_id: int,
    wanted: Callable[[Commands], bool],
) -> Commands:
    """Send what the outbox holds until the chat's menu is as ``wanted`` (the sender
    keeps to one call a second per chat: the manual clock moves on between rounds)."""
    sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
    async with asyncio.timeout(30):
        while True:
            await sender.drain_once()
            commands = await client.commands(chat_id)
            if wanted(commands):
                return commands
            clock.advance(timedelta(seconds=2))


def names(commands: Commands) -> list[str]:
    return [command["command"] for command in commands]


async def menu_rows(runtime: Runtime) -> int:
    async with runtime.services.database.uow() as uow:
        count = await uow.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == MENU_KIND)
        )
    return int(count or 0)


async def test_menus_hold_the_flows_then_the_citizens_then_the_roles_commands(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    async with running_bot(database_url, emulator_server.url, ManualClock()) as runtime:
        services = runtime.services
        async with services.database.uow() as uow:
            citizen = await services.command_menu(uow, "en", NO_ROLES)
            manager = await services.command_menu(uow, "fr", StaffRoles(False, frozenset({1})))
            admin = await services.command_menu(uow, "en", StaffRoles(True, frozenset()))
    listed = {
        key: [entry.command for entry in menu]
        for key, menu in (("citizen", citizen), ("manager", manager), ("admin", admin))
    }
    assert listed["citizen"] == ["report", "volunteer", "rate", *COMMANDS]
    # /report is the citizens' flow for staff too (with a reference it opens a card).
    staff = [name for name in MANAGER_MENU if name != "report"]
    assert listed["manager"] == [*listed["citizen"], *staff]
    assert listed["admin"] == [*listed["citizen"], *staff, *ADMIN_MENU]
    assert manager[listed["manager"].index("reports")].description == (
        "Les signalements de vos services"
    )
    for menu in (citizen, manager, admin):
        assert len(menu) <= 100  # Telegram's limits
        for entry in menu:
            assert re.fullmatch(r"[a-z0-9_]{1,32}", entry.command)
            assert 1 <= len(entry.description) <= 256


async def test_a_staff_members_menu_follows_their_roles_and_language(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(
        database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)
    ) as runtime:
        client = emulator_server.client
        await announce_commands(runtime)
        default = names(await client.commands(MANAGER_USER["id"]))
        assert default[:3] == ["report", "volunteer", "rate"] and "reports" not in default
        admin, manager = Citizen(client, ADMIN), Citizen(client, MANAGER_USER)
        await manager.send("/start", expect="Hello Max")

        # An ADMIN_IDS administrator gets their menu on their first /help.
        await admin.send("/help", expect="For administrators")
        menu = await delivered(runtime, clock, client, ADMIN["id"], lambda c: "grant" in names(c))
        assert names(menu).count("report") == 1 and "reports" in names(menu)

        await admin.send("/grant manager @max_menus lighting", expect="is now manager")
        menu = await delivered(
            runtime, clock, client, MANAGER_USER["id"], lambda c: "reports" in names(c)
        )
        assert "grant" not in names(menu)
        described = {entry["command"]: entry["description"] for entry in menu}
        assert described["reports"] == "Reports of your services"

        await manager.send("/language", expect="Which language")
        await manager.tap("Français", expect="français")
        menu = await delivered(
            runtime,
            clock,
            client,
            MANAGER_USER["id"],
            lambda c: (
                {e["command"]: e["description"] for e in c}.get("reports")
                == "Les signalements de vos services"
            ),
        )
        assert "grant" not in names(menu)

        rows = await menu_rows(runtime)
        await manager.send("/help", expect="Pour le personnel")  # nothing changed: nothing sent
        await announce_commands(runtime)  # a restart with nothing changed: neither
        assert await menu_rows(runtime) == rows

        await admin.send("/revoke @max_menus", expect="lost 1 role")
        await delivered(runtime, clock, client, MANAGER_USER["id"], lambda c: names(c) == default)

        # A role given where no notice goes (as a catalogue import from the command
        # line does): the next start gives the manager their menu.
        async with runtime.services.database.uow() as uow:
            person = await uow.repos.citizens.by_telegram_id(MANAGER_USER["id"])
            service = await uow.repos.catalog.service_by_code("roads")
            assert person is not None and service is not None
            now = datetime.now(UTC)
            await uow.repos.staff.grant(person.id, MANAGER, service_id=service.id, by="t", now=now)
        await announce_commands(runtime)
        await delivered(runtime, clock, client, MANAGER_USER["id"], lambda c: "reports" in names(c))

        # A role taken where no notice goes: the first refusal takes the menu away.
        async with runtime.services.database.uow() as uow:
            assert await uow.repos.staff.revoke(person.id) == 1
        await manager.send("/reports", expect="réservé au personnel")
        await delivered(runtime, clock, client, MANAGER_USER["id"], lambda c: names(c) == default)
