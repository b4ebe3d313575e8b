"""Managers: a new report reaches its service's managers as a card; their buttons change it."""

from __future__ import annotations

from bot.clock import ManualClock
from bot.outbox.sender import OutboxSender
from tests.e2e.test_journeys import TEXTS, report_journey
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9601, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9602, "first_name": "Mo", "username": "mo_roads", "language_code": "fr"}
REPORTER = {"id": 9603, "first_name": "Rita", "username": "rita_r", "language_code": "en"}
OTHER_MANAGER = {"id": 9604, "first_name": "Lu", "username": "lu_lights", "language_code": "en"}


async def test_report_card_status_change_and_scope(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(
        database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)
    ) as runtime:
        client = emulator_server.client
        admin, manager, reporter, other = (
            Citizen(client, user) for user in (ADMIN, MANAGER, REPORTER, OTHER_MANAGER)
        )
        for person, hello in ((manager, "Bonjour"), (other, "Hello"), (reporter, "Hello")):
            await person.send("/start", expect=hello)
        await admin.send("/grant manager @mo_roads roads", expect="is now manager")
        await admin.send("/grant manager @lu_lights lighting", expect="is now manager")

        reference = await report_journey(reporter, TEXTS["en"])
        sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
        await sender.drain_once()
        card = await client.wait_for_bot_message(
            MANAGER["id"], predicate=lambda m: reference in m.content and "Statut" in m.content
        )
        # The reporter did not ask to stay anonymous: their name is shown, with the pseudonym.
        assert "Rita @rita_r" in card.content
        assert "Deep pothole <b>near</b> the school" in card.content  # text, not markup
        assert "résolu" in card.button_texts
        other_history = await client.history(OTHER_MANAGER["id"])
        assert not any(reference in m.content for m in other_history.bot_messages)

        # A manager of another service sending the same button data is refused.
        data = next(b.callback_data for b in card.buttons if b.text == "résolu")
        hello = (await client.history(OTHER_MANAGER["id"])).bot_messages[-1]
        await client.inject_update(
            {
                "update_id": 880001,
                "callback_query": {
                    "id": "foreign",
                    "chat_instance": "ci",
                    "from": {"id": OTHER_MANAGER["id"], "is_bot": False, "first_name": "Lu"},
                    "message": {
                        "message_id": hello.message_id,
                        "date": 1,
                        "chat": {"id": OTHER_MANAGER["id"], "type": "private"},
                    },
                    "data": data,
                },
            }
        )
        await client.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda call: "do not manage" in str(call.params.get("text")),
        )

        await manager.tap("résolu", expect="est maintenant « résolu »")
        await sender.drain_once()
        await client.wait_for_bot_message(
            REPORTER["id"], predicate=lambda m: reference in m.content and "fixed" in m.content
        )
        async with runtime.services.database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None and report.status == "fixed"
            history = await uow.repos.reports.history(report.id)
            assert history[-1].to_status == "fixed" and history[-1].actor.startswith("staff:")
            audit = await uow.repos.staff.audit_entries(action="report.status")
            assert [entry.subject for entry in audit] == [reference]

        listing = await manager.send("/reports all", expect="Signalements")
        assert reference in listing.content
        await other.send(f"/report {reference}", expect="cannot find")
        await reporter.send("/reports", expect="for the administration's staff only")
