"""A status the state table marks ``note: true`` asks the manager for a note first."""

from __future__ import annotations

from datetime import timedelta

import yaml
from sqlalchemy import select

from bot.clock import ManualClock
from bot.outbox.sender import OutboxSender
from bot.usecases.configuration import export_statuses, import_statuses
from storage.models import AuditEntry
from tests.e2e.test_journeys import TEXTS, report_journey
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9651, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9652, "first_name": "Mo", "username": "mo_notes", "language_code": "en"}
REPORTER = {"id": 9653, "first_name": "Rita", "language_code": "en"}


async def test_a_note_is_asked_then_sent_with_the_news(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    async with running_bot(
        database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)
    ) as runtime:
        client = emulator_server.client
        t = runtime.services.translator
        admin, manager, reporter = (Citizen(client, u) for u in (ADMIN, MANAGER, REPORTER))
        for person in (admin, manager, reporter):
            await person.send("/start", expect="Hello")
        await admin.send("/grant manager @mo_notes roads", expect="is now manager")
        database = runtime.services.database
        async with database.uow() as uow:
            table = yaml.safe_load(await export_statuses(uow, translator=t, languages=t.languages))
            table["statuses"]["fixed"]["note"] = True
            table["statuses"]["in_progress"]["note"] = True
            await import_statuses(
                uow,
                yaml.safe_dump(table, allow_unicode=True),
                filename="statuses.yaml",
                languages=t.languages,
                actor="staff:test",
                now=clock.now(),
                translator=t,
            )

        reference = await report_journey(reporter, TEXTS["en"])
        sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
        await sender.drain_once()
        await client.wait_for_bot_message(
            MANAGER["id"], predicate=lambda m: reference in m.content and "Status" in m.content
        )

        # "In progress" asks for a note; "Without a note" changes it all the same.
        await manager.tap("in progress", expect="reply to this message with a note")
        await manager.tap("Without a note", expect="is now “in progress”")

        # "Fixed": the manager replies to the prompt; the reporter reads the note.
        prompt = await manager.tap("fixed", expect="reply to this message with a note")
        sent = await client.send_text(
            MANAGER["id"], "New asphalt <laid> today", user=MANAGER, reply_to=prompt.message_id
        )
        await client.wait_for_bot_message(
            MANAGER["id"], after=sent.message_id, predicate=lambda m: "is now “fixed”" in m.content
        )
        for _ in range(3):  # the reporter's second message waits for the per-chat pace
            clock.advance(timedelta(seconds=2))
            await sender.drain_once()
        news = await client.wait_for_bot_message(
            REPORTER["id"],
            predicate=lambda m: reference in m.content and "New asphalt" in m.content,
        )
        assert "New asphalt <laid> today" in news.content  # escaped, shown as written

        # A reply to the prompt once the status changed is stale: nothing more happens.
        again = await client.send_text(
            MANAGER["id"], "again", user=MANAGER, reply_to=prompt.message_id
        )
        await client.wait_for_bot_message(
            MANAGER["id"], after=again.message_id, predicate=lambda m: "no longer" in m.content
        )
        async with database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None and report.status == "fixed"
            history = await uow.repos.reports.history(report.id)
            notes = [(e.to_status, e.note) for e in history if e.to_status]
            details = (
                (
                    await uow.session.execute(
                        select(AuditEntry.details).where(AuditEntry.action == "report.status")
                    )
                )
                .scalars()
                .all()
            )
        assert ("in_progress", None) in notes and ("fixed", "New asphalt <laid> today") in notes
        assert [d["note"] for d in details] == [False, True]
