"""Roles: administrators grant and invite; everyone else is refused, buttons included."""

from __future__ import annotations

import pytest
from aiogram import Router

from bot.clock import ManualClock
from bot.handlers.admin import ADMIN_COMMANDS, STAFF_COMMANDS, build_admin_router
from bot.outbox.sender import OutboxSender
from tests.support.citizen import Citizen, containing
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9501, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9502, "first_name": "Max", "username": "max_the_manager", "language_code": "en"}
CITIZEN = {"id": 9503, "first_name": "Cy", "language_code": "fr"}


def test_every_admin_handler_sits_behind_the_role_filter() -> None:
    router: Router = build_admin_router()
    for observer in (router.message, router.callback_query):
        names = [type(f.callback).__name__ for f in observer._handler.filters or []]
        assert "RequireRole" in names, observer
    assert set(ADMIN_COMMANDS) <= set(STAFF_COMMANDS)


async def test_grant_invite_refuse_and_audit(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, clock, **settings) as runtime:
        client = emulator_server.client
        admin, manager, citizen = (Citizen(client, u) for u in (ADMIN, MANAGER, CITIZEN))
        await manager.send("/start", expect="Hello Max")
        await citizen.send("/start", expect="Bonjour Cy")

        # A citizen trying staff commands gets a polite refusal and changes nothing.
        for command in STAFF_COMMANDS:
            await citizen.send(f"/{command} admin 9503", expect="réservé au personnel")
        sent = await client.send_text(CITIZEN["id"], "x", user=CITIZEN)
        await client.wait_for_bot_message(CITIZEN["id"], after=sent.message_id)
        await client.inject_update(
            {
                "update_id": 990001,
                "callback_query": {
                    "id": "cq1",
                    "chat_instance": "ci",
                    "from": {"id": CITIZEN["id"], "is_bot": False, "first_name": "Cy"},
                    "message": {
                        "message_id": sent.message_id,
                        "date": 1,
                        "chat": {"id": CITIZEN["id"], "type": "private"},
                    },
                    "data": "adm:anything",
                },
            }
        )
        await client.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda call: "réservé" in str(call.params.get("text")),
        )

        await admin.send(
            "/grant manager @max_the_manager lighting",
            expect="is now manager of Street lighting.",
        )
        # The new manager is told, through the outbox, what they now are.
        sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
        await sender.drain_once()
        await client.wait_for_bot_message(
            MANAGER["id"],
            predicate=containing("You are now manager of Street lighting. Type /help"),
        )
        await admin.send("/grant manager @max_the_manager lighting", expect="already has")
        await admin.send("/grant manager @nobody lighting", expect="I do not know")
        await admin.send("/grant manager @max_the_manager zeppelins", expect="no service")
        await admin.send("/grant", expect="Use: /grant")
        link = await admin.send(
            "/invite manager roads,water",
            expect="makes its first user manager of Roads and pavements, Water",
        )
        code = link.content.split("?start=")[1].split()[0]
        await citizen.send(
            f"/start {code}", expect="Bienvenue dans l’équipe ! Vous êtes désormais responsable de"
        )
        other = Citizen(client, {"id": 9504, "first_name": "Zed", "language_code": "en"})
        await other.send(f"/start {code}", expect="not valid any more")

        async with runtime.services.database.uow() as uow:
            max_record = await uow.repos.citizens.by_telegram_id(MANAGER["id"])
            cy = await uow.repos.citizens.by_telegram_id(CITIZEN["id"])
            assert max_record is not None and cy is not None
            assert len((await uow.repos.staff.roles_of(max_record.id)).service_ids) == 1
            assert len((await uow.repos.staff.roles_of(cy.id)).service_ids) == 2
            actions = [e.action for e in await uow.repos.staff.audit_entries()]
        assert actions == ["invite.accept", "invite.create", "role.grant"]

        audit = await admin.send("/audit", expect="Latest staff actions")
        assert "role.grant" in audit.content
        await admin.send("/revoke @max_the_manager", expect="lost 1 role")
        await sender.drain_once()
        await client.wait_for_bot_message(
            MANAGER["id"], predicate=containing("Your staff role has ended")
        )
        await admin.send("/revoke @max_the_manager", expect="has no staff role")


@pytest.mark.parametrize("command", ["/grant admin 9503", "/audit"])
async def test_a_revoked_manager_is_refused(
    emulator_server: EmulatorServer, database_url: str, command: str
) -> None:
    async with running_bot(database_url, emulator_server.url, ManualClock()):
        citizen = Citizen(emulator_server.client, CITIZEN)
        await citizen.send(command, expect="réservé au personnel")
