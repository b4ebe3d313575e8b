"""Every staff router checks the role on messages and buttons alike; others are refused.

The structural test finds the routers from the dispatcher itself, so a new staff
router that forgets its role filter fails here, not in production.
"""

from __future__ import annotations

import itertools

import pytest
from aiogram import Dispatcher, Router

from bot.clock import ManualClock
from bot.commandmenu import ADMIN_MENU, MANAGER_MENU
from bot.handlers import include_routers
from bot.handlers.admin import STAFF_BUTTON_PREFIXES, STAFF_COMMANDS
from bot.i18n import Translator
from bot.runtime.access import RequireRole
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

# Routers citizens use; every other router is for staff and must check the role.
CITIZEN_ROUTERS = {"membership", "refusal", "citizen", "account", "dialog", "fallback"}
ADMIN = {"id": 9801, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9802, "first_name": "Max", "username": "max_routers", "language_code": "en"}
CITIZEN = {"id": 9803, "first_name": "Cy", "language_code": "fr"}


def _routers() -> list[Router]:
    dispatcher = Dispatcher()
    include_routers(dispatcher)
    return list(dispatcher.sub_routers)


def _needs(router: Router, observer_name: str) -> str | None:
    observer = getattr(router, observer_name)
    for handler_filter in observer._handler.filters or []:
        if isinstance(handler_filter.callback, RequireRole):
            return handler_filter.callback.need
    return None


def test_every_staff_router_requires_a_role_for_messages_and_buttons() -> None:
    staff = [router for router in _routers() if router.name not in CITIZEN_ROUTERS]
    assert {router.name for router in staff} >= {
        "admin",
        "manager",
        "digests",
        "broadcasts",
        "opportunities",
        "flows_admin",
    }
    for router in staff:
        for observer in ("message", "callback_query"):
            if getattr(router, observer).handlers:
                assert _needs(router, observer) is not None, (router.name, observer)


def test_staff_routers_come_before_the_refusal_and_the_citizens_routers() -> None:
    names = [router.name for router in _routers()]
    refusal = names.index("refusal")
    assert all(names.index(name) < refusal for name in names if name not in CITIZEN_ROUTERS)


@pytest.mark.parametrize("prefix", STAFF_BUTTON_PREFIXES)
async def test_a_citizen_pressing_any_staff_button_is_refused(
    emulator_server: EmulatorServer, database_url: str, prefix: str
) -> None:
    clock = ManualClock()
    async with running_bot(
        database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)
    ) as runtime:
        client = emulator_server.client
        citizen = Citizen(client, CITIZEN)
        greeting = await citizen.send("/start", expect="Bonjour")
        async with runtime.services.database.uow() as uow:
            before = len(await uow.repos.staff.audit_entries(limit=1000))
        numbers = itertools.count(1)
        for data in (f"{prefix}x", f"{prefix}k:all", f"{prefix}v:1", f"{prefix}go:1"):
            query_id = f"{prefix}{next(numbers)}"
            await client.inject_update(
                {
                    "update_id": 880000 + next(numbers),
                    "callback_query": {
                        "id": query_id,
                        "chat_instance": "ci",
                        "from": {"id": CITIZEN["id"], "is_bot": False, "first_name": "Cy"},
                        "message": {
                            "message_id": greeting.message_id,
                            "date": 1,
                            "chat": {"id": CITIZEN["id"], "type": "private"},
                        },
                        "data": data[:64],
                    },
                }
            )
            await client.wait_for_call(
                "answerCallbackQuery",
                predicate=lambda call, q=query_id: (
                    call.params.get("callback_query_id") == q
                    and "réservé" in str(call.params.get("text"))
                ),
            )
        async with runtime.services.database.uow() as uow:
            assert len(await uow.repos.staff.audit_entries(limit=1000)) == before


async def test_a_manager_is_refused_the_administrators_commands(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(
        database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)
    ) as runtime:
        client = emulator_server.client
        admin, manager = Citizen(client, ADMIN), Citizen(client, MANAGER)
        await admin.send("/start", expect="Hello")
        await manager.send("/start", expect="Hello")
        await admin.send("/grant manager @max_routers lighting", expect="is now manager")
        async with runtime.services.database.uow() as uow:
            before = len(await uow.repos.staff.audit_entries(limit=1000))
        admin_only = [
            command
            for command in STAFF_COMMANDS
            if command in ("grant", "revoke", "invite", "audit", "broadcast", "yousaid", "flows")
        ]
        for command in admin_only:
            await manager.send(f"/{command} admin 9802", expect="staff")
        async with runtime.services.database.uow() as uow:
            assert len(await uow.repos.staff.audit_entries(limit=1000)) == before


def test_help_offers_every_staff_command_with_a_description() -> None:
    # "/report" is not a staff command of its own: with a reference it opens a card.
    assert set(MANAGER_MENU + ADMIN_MENU) == {*STAFF_COMMANDS, "report"}
    assert len(MANAGER_MENU + ADMIN_MENU) == len(set(MANAGER_MENU + ADMIN_MENU))
    translator = Translator.load("en")
    for name in MANAGER_MENU + ADMIN_MENU:
        assert translator.has(f"command.{name}"), name


async def test_help_shows_each_person_the_commands_of_their_role(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)):
        client = emulator_server.client
        admin, manager = Citizen(client, ADMIN), Citizen(client, MANAGER)
        citizen = Citizen(client, CITIZEN)
        await admin.send("/start", expect="Hello")
        await manager.send("/start", expect="Hello")
        await citizen.send("/start", expect="Bonjour")
        await admin.send("/grant manager @max_routers lighting", expect="is now manager")

        def offered(text: str, names: tuple[str, ...]) -> list[bool]:
            return [f"/{name} — " in text for name in names]

        text = (await admin.send("/help", expect="For administrators")).content
        assert "For staff" in text
        assert all(offered(text, MANAGER_MENU + ADMIN_MENU))

        text = (await manager.send("/help", expect="For staff")).content
        assert all(offered(text, MANAGER_MENU))
        assert not any(offered(text, ADMIN_MENU))
        assert "For administrators" not in text

        text = (await citizen.send("/help", expect="Commandes")).content
        assert not any(offered(text, MANAGER_MENU + ADMIN_MENU))
        assert "personnel" not in text

        await admin.send("/revoke @max_routers", expect="lost 1 role")
        text = (await manager.send("/help", expect="/start")).content
        assert not any(offered(text, MANAGER_MENU + ADMIN_MENU))
