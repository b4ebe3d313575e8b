"""An administrator composes, previews and sends a broadcast in chat; nobody else can."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.outbox.sender import OutboxSender
from bot.usecases.broadcasts import BroadcastMonitor
from storage.models import AuditEntry, Broadcast, OutboxMessage
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9601, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9602, "first_name": "Max", "username": "max_bc", "language_code": "en"}
FRENCH = [{"id": 9610 + n, "first_name": f"Fr{n}", "language_code": "fr"} for n in range(3)]
ENGLISH = {"id": 9620, "first_name": "En", "language_code": "en"}


async def test_compose_preview_send_and_refusals(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, clock, **settings) as runtime:
        client = emulator_server.client
        admin, manager, english = (Citizen(client, u) for u in (ADMIN, MANAGER, ENGLISH))
        french = [Citizen(client, u) for u in FRENCH]
        await admin.send("/start", expect="Hello Ada")
        await manager.send("/start", expect="Hello Max")
        await admin.send("/grant manager @max_bc lighting", expect="is now manager")
        await english.send("/start", expect="Hello En")
        for person in french:
            await person.send("/start", expect="Bonjour")
        await french[2].send("/stop", expect="")

        # Neither a manager nor a citizen may broadcast, by command or by button.
        for person in (manager, english):
            await person.send("/broadcast", expect="staff")
        await admin.send("/broadcast", expect="Who should receive")
        for number, person in enumerate((manager, english)):
            sent = await client.send_text(person.id, "x", user=person.user)
            await client.wait_for_bot_message(person.id, after=sent.message_id)
            await client.inject_update(
                {
                    "update_id": 990100 + number,
                    "callback_query": {
                        "id": f"bc{number}",
                        "chat_instance": "ci",
                        "from": {"id": person.id, "is_bot": False, "first_name": "X"},
                        "message": {
                            "message_id": sent.message_id,
                            "date": 1,
                            "chat": {"id": person.id, "type": "private"},
                        },
                        "data": "bc:k:all",
                    },
                }
            )
            await client.wait_for_call(
                "answerCallbackQuery",
                predicate=lambda call, n=number: (
                    call.params.get("callback_query_id") == f"bc{n}"
                    and "staff" in str(call.params.get("text"))
                ),
            )
        async with runtime.services.database.uow() as uow:
            assert (
                await uow.session.execute(select(func.count()).select_from(Broadcast))
            ).scalar_one() == 0

        await admin.tap("By language", expect="Which language?")
        prompt = await admin.tap("Français", expect="Reply to this message")
        assert "(2 today)" in prompt.content  # the third French speaker used /stop
        sent = await client.send_text(
            admin.id, "Réunion <b>publique</b> & débat", user=admin.user, reply_to=prompt.message_id
        )
        preview = await client.wait_for_bot_message(
            admin.id, after=sent.message_id, predicate=lambda m: "Send to 2" in m.button_texts
        )
        history = await client.history(admin.id)
        shown = [m.content for m in history.bot_messages if m.message_id < preview.message_id]
        assert "Réunion <b>publique</b> & débat" in shown[-1]  # the exact text, escaped
        await admin.tap("Send to 2", expect="Sending to 2 people")
        stale = await client.press_button(
            admin.id, preview.message_id, text="Send to 2", wait_answer=10
        )
        assert stale.answer is not None and "already" in (stale.answer.text or "")

        sender = OutboxSender(runtime.services, runtime.bot, worker_id="t")
        monitor = BroadcastMonitor(runtime.services, runtime.bot)
        async with asyncio.timeout(60):
            while await monitor.sweep() == 0:
                await sender.drain_once()
                clock.advance(timedelta(seconds=2))
            for _ in range(3):
                await sender.drain_once()
                clock.advance(timedelta(seconds=2))
        for person, expected in zip(french, (1, 1, 0), strict=True):
            texts = [m.content for m in (await client.history(person.id)).bot_messages]
            assert sum("Réunion" in text for text in texts) == expected
        english_texts = [m.content for m in (await client.history(english.id)).bot_messages]
        assert not any("Réunion" in text for text in english_texts)
        admin_texts = [m.content for m in (await client.history(admin.id)).bot_messages]
        assert any("2 of 2 delivered" in text and "finished" in text for text in admin_texts)

        async with runtime.services.database.uow() as uow:
            rows = (
                await uow.session.execute(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.kind == "broadcast")
                )
            ).scalar_one()
            actions = (await uow.session.execute(select(AuditEntry.action))).scalars().all()
        assert rows == 2  # the second press of "Send" queued nothing
        assert actions.count("broadcast.send") == 1
