"""Administrators manage flows in the chat: upload, preview, publish, roll back.

Everything runs over the emulator against the real bot; everyone else is refused.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import aiohttp
from aiogram import Router
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.emulator.client import ChatMessage, EmulatorClient
from bot.handlers.admin import STAFF_BUTTON_PREFIXES, STAFF_COMMANDS
from bot.handlers.flows_admin import BUTTON_PREFIX, FLOW_COMMANDS, build_flows_admin_router
from storage.db import Database
from storage.models import AuditEntry, FlowRevision, Rating, Report, Signup
from tests.support.citizen import Citizen, containing
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9601, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9602, "first_name": "Max", "username": "max_flows", "language_code": "en"}
CITIZEN = {"id": 9603, "first_name": "Cy", "language_code": "en"}
OTHER = {"id": 9604, "first_name": "Olu", "language_code": "en"}

SHIPPED_RATE = (Path(__file__).resolve().parents[2] / "dialogs/flows/rate.yaml").read_text()
OLD_QUESTION = "Overall, how satisfied are you"
NEW_QUESTION = "Overall, how HAPPY are you"
RATE_V2 = SHIPPED_RATE.replace(OLD_QUESTION, NEW_QUESTION)

# Line 6 has the problem: "kind" is not a step kind.
BROKEN = """\
id: rate
version: 1
title: {en: Rate, fr: Évaluer}
steps:
  - id: ask
    kind: teleport
    name: answer
"""

# Every kind of action a citizen's flow can take, one after the other.
EVERY_ACTION = """\
id: everything
version: 1
title: {en: Everything, fr: Tout}
steps:
  - id: what
    kind: text
    name: what
    prompt: {en: "What happened?", fr: "Que s'est-il passé ?"}
  - id: report
    kind: call
    call: create_report
    params:
      category: "'potholes'"
      description: answers.what
    result: report
  - id: rating
    kind: call
    call: record_rating
    params: {service: "'roads'", overall: 4}
  - id: signup
    kind: call
    call: volunteer_signup
    params: {opportunity: "'park-cleanup'"}
    result: signup
  - id: done
    kind: end
    text: {en: "All done.", fr: "Terminé."}
"""


def test_every_flow_handler_sits_behind_the_admin_role() -> None:
    router: Router = build_flows_admin_router()
    for observer in (router.message, router.callback_query):
        names = [type(f.callback).__name__ for f in observer._handler.filters or []]
        assert "RequireRole" in names, observer
    # Others meet the polite refusal for the command and for the buttons.
    assert set(FLOW_COMMANDS) <= set(STAFF_COMMANDS)
    assert BUTTON_PREFIX.startswith(STAFF_BUTTON_PREFIXES)


async def upload(admin: Citizen, source: str, *, name: str, expect: str) -> ChatMessage:
    """Send ``source`` as a document and wait for ``expect``."""
    sent = await admin.client.send_document(
        admin.id, source.encode(), file_name=name, mime_type="application/yaml", user=admin.user
    )
    return await admin.client.wait_for_bot_message(
        admin.id, after=sent.message_id, predicate=containing(expect), timeout=30
    )


_updates = itertools.count(992_000)


async def press_as(client: EmulatorClient, person: Citizen, data: str) -> None:
    """Press a button carrying ``data`` (as if forged or forwarded) and await the refusal."""
    sent = await client.send_text(person.id, "x", user=person.user)
    await client.wait_for_bot_message(person.id, after=sent.message_id)
    update_id = next(_updates)
    query_id = f"cq-{update_id}"
    await client.inject_update(
        {
            "update_id": update_id,
            "callback_query": {
                "id": query_id,
                "chat_instance": "ci",
                "from": {"id": person.id, "is_bot": False, "first_name": "X"},
                "message": {
                    "message_id": sent.message_id,
                    "date": 1,
                    "chat": {"id": person.id, "type": "private"},
                },
                "data": data,
            },
        }
    )
    await client.wait_for_call(
        "answerCallbackQuery",
        predicate=lambda call: (
            call.params.get("callback_query_id") == query_id
            and "staff only" in str(call.params.get("text"))
        ),
    )


async def count(database: Database, model: Any, *conditions: Any) -> int:
    async with database.uow() as uow:
        statement = select(func.count()).select_from(model).where(*conditions)
        return int(await uow.session.scalar(statement) or 0)


async def published_number(database: Database, flow_id: str) -> int | None:
    async with database.uow() as uow:
        record = await uow.repos.flows.published(flow_id)
    return None if record is None else record.number


async def audit_trail(database: Database) -> list[tuple[str, str, str | None, int | None]]:
    async with database.uow() as uow:
        entries = await uow.repos.staff.audit_entries(limit=100)
    return [(e.actor, e.action, e.subject, e.details.get("revision")) for e in reversed(entries)]


async def test_upload_preview_publish_and_roll_back(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, ManualClock(), **settings) as runtime:
        database = runtime.services.database
        admin = Citizen(emulator_server.client, ADMIN)
        await admin.send("/start", expect="Hello Ada")

        # Upload: validated, stored as a draft, the diff against what is published.
        await upload(admin, RATE_V2, name="rate.yaml", expect="Draft rate@2 stored")
        diff = await admin.client.wait_for_bot_message(
            admin.id, predicate=containing(f'+      en: "<b>{NEW_QUESTION}'), timeout=30
        )
        assert f'-      en: "<b>{OLD_QUESTION}' in diff.content
        assert diff.button_texts == ["👁 Preview", "✅ Publish", "🗑 Discard"]
        assert await published_number(database, "rate") == 1

        # Preview: the draft as a citizen sees it; the action is described, not done.
        await admin.tap("👁 Preview", expect="Which service")
        await admin.tap("Roads and pavements", expect=NEW_QUESTION)
        await admin.tap("5", expect="tell us a little more")
        await admin.tap("No, thanks", expect="Anything else")
        await admin.send("Lovely <b>staff</b>", expect="Preview ended: nothing was saved")
        history = await admin.client.history(admin.id)
        texts = [m.content for m in history.bot_messages]
        described = next(t for t in texts if "a rating would be recorded" in t)
        assert "service=roads" in described and "overall=5" in described
        assert "comment=Lovely <b>staff</b>" in described  # shown as typed, not as markup
        assert await count(database, Rating) == 0
        assert await published_number(database, "rate") == 1

        # Publish: new conversations take the draft.
        await admin.tap("✅ Publish", expect="rate@2 is published (before: rate@1)")
        assert await published_number(database, "rate") == 2
        citizen = Citizen(emulator_server.client, CITIZEN)
        await citizen.send("/rate", expect="Which service")
        await citizen.tap("Roads and pavements", expect=NEW_QUESTION)
        await citizen.send("/cancel", expect="we stopped here")

        # Roll back from the list: the published pointer moves back to revision 1.
        listing = await admin.send("/flows", expect="Dialog flows")
        assert "rate: published 2" in listing.content
        assert "↩ rate@1" in listing.button_texts
        await admin.tap("↩ rate@1", expect="Rolled back: rate@1 is published again")
        assert await published_number(database, "rate") == 1
        await citizen.send("/rate", expect="Which service")
        await citizen.tap("Roads and pavements", expect=OLD_QUESTION)

        # Both revisions are still stored, unchanged; every decision is audited.
        async with database.uow() as uow:
            revisions = await uow.repos.flows.revisions("rate")
        assert [(r.number, r.published) for r in revisions] == [(2, False), (1, True)]
        assert revisions[0].source == RATE_V2
        assert revisions[0].author.startswith("staff:")
        actor = revisions[0].author
        assert await audit_trail(database) == [
            (actor, "flow.draft", "rate", 2),
            (actor, "flow.publish", "rate", 2),
            (actor, "flow.rollback", "rate", 1),
        ]
        # Discard the draft that is no longer published: it leaves the lists.
        await admin.send("/flows rate", expect="drafts: 2")
        await upload(admin, RATE_V2, name="rate.yaml", expect="same as the stored draft rate@2")
        await admin.tap("🗑 Discard", expect="Draft rate@2 discarded")
        listing = await admin.send("/flows rate", expect="drafts: none")
        assert not [b for b in listing.button_texts if "rate@2" in b]


async def test_a_broken_upload_is_answered_with_line_numbers_and_stores_nothing(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, ManualClock(), **settings) as runtime:
        database = runtime.services.database
        admin = Citizen(emulator_server.client, ADMIN)
        await admin.send("/start", expect="Hello Ada")
        before = await count(database, FlowRevision)

        answer = await upload(admin, BROKEN, name="rate.yaml", expect="nothing was stored")
        assert "rate.yaml has 1 problem(s)" in answer.content
        assert "\n6: " in answer.content and "teleport" in answer.content
        assert not answer.content.count("rate.yaml:")  # the administrator sees line: message
        assert answer.button_texts == []
        await upload(admin, "id: [unclosed", name="x.yml", expect="nothing was stored")

        assert await count(database, FlowRevision) == before
        assert await published_number(database, "rate") == 1
        assert await audit_trail(database) == []
        citizen = Citizen(emulator_server.client, CITIZEN)
        await citizen.send("/rate", expect="Which service")


async def test_a_running_conversation_keeps_its_revision_across_a_publish(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, ManualClock(), **settings):
        admin = Citizen(emulator_server.client, ADMIN)
        early = Citizen(emulator_server.client, CITIZEN)
        late = Citizen(emulator_server.client, OTHER)
        await early.send("/rate", expect="Which service")

        await admin.send("/start", expect="Hello Ada")
        await upload(admin, RATE_V2, name="rate.yaml", expect="Draft rate@2 stored")
        await admin.tap("✅ Publish", expect="rate@2 is published")

        # Begun on revision 1, finished on revision 1; a new conversation takes revision 2.
        await early.tap("Roads and pavements", expect=OLD_QUESTION)
        await late.send("/rate", expect="Which service")
        await late.tap("Roads and pavements", expect=NEW_QUESTION)
        await early.tap("4", expect="tell us a little more")


async def test_preview_describes_every_action_and_creates_nothing(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, ManualClock(), **settings) as runtime:
        database = runtime.services.database
        admin = Citizen(emulator_server.client, ADMIN)
        await admin.send("/start", expect="Hello Ada")
        await upload(admin, EVERY_ACTION, name="everything.yaml", expect="a new flow")
        await admin.tap("👁 Preview", expect="What happened?")
        await admin.send("A hole", expect="Preview ended")
        texts = [m.content for m in (await admin.client.history(admin.id)).bot_messages]
        assert any(
            "a report would be created with category=potholes, description=A hole" in t
            for t in texts
        )
        assert any("a rating would be recorded with service=roads, overall=4" in t for t in texts)
        assert any("the volunteer would be signed up: opportunity=park-cleanup" in t for t in texts)
        assert any("All done." in t for t in texts)
        assert (await count(database, Report), await count(database, Rating)) == (0, 0)
        assert await count(database, Signup) == 0
        assert await published_number(database, "everything") is None

        # /cancel ends a preview like any conversation.
        await admin.tap("👁 Preview", expect="What happened?")
        await admin.send("/cancel", expect="Preview ended")
        async with database.uow() as uow:
            ada = await uow.repos.citizens.by_telegram_id(ADMIN["id"])
            assert ada is not None
            assert await uow.repos.sessions.get(ada.id) is None
        assert await count(database, Report) == 0


async def test_managers_and_citizens_are_refused_every_flow_command_and_button(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, ManualClock(), **settings) as runtime:
        database = runtime.services.database
        client = emulator_server.client
        admin = Citizen(client, ADMIN)
        await admin.send("/start", expect="Hello Ada")
        manager = Citizen(client, MANAGER)
        await manager.send("/start", expect="Hello Max")
        await admin.send("/grant manager @max_flows roads", expect="is now manager")
        # A draft, and an earlier revision to roll back to, exist for them to try.
        await upload(admin, RATE_V2, name="rate.yaml", expect="Draft rate@2 stored")
        async with database.uow() as uow:
            draft = await uow.repos.flows.by_number("rate", 2)
            shipped = await uow.repos.flows.by_number("rate", 1)
        assert draft is not None and shipped is not None
        await admin.tap("✅ Publish", expect="rate@2 is published")
        trail = await audit_trail(database)
        revisions = await count(database, FlowRevision)

        for person in (manager, Citizen(client, CITIZEN)):
            await person.send("/flows", expect="for the administration's staff only")
            await person.send("/flows rate", expect="for the administration's staff only")
            await upload(person, RATE_V2, name="rate.yaml", expect="")
            await upload(person, SHIPPED_RATE, name="rate.yml", expect="")
            for action, revision in (
                ("prev", draft),
                ("pub", draft),
                ("pub", shipped),
                ("del", draft),
            ):
                await press_as(client, person, f"{BUTTON_PREFIX}{action}:{revision.id}")
            async with database.uow() as uow:
                record = await uow.repos.citizens.by_telegram_id(person.id)
                assert record is not None
                assert await uow.repos.sessions.get(record.id) is None  # no preview began

        assert await published_number(database, "rate") == 2
        assert await count(database, FlowRevision) == revisions
        assert await audit_trail(database) == trail
        assert await count(database, AuditEntry, AuditEntry.action.startswith("flow.")) == 2


async def test_a_diff_longer_than_a_message_comes_as_a_file(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    long_flow = EVERY_ACTION + "".join(f"# note {i}: {'x' * 60}\n" for i in range(80))
    settings = {"admin_ids": (ADMIN["id"],)}
    async with running_bot(database_url, emulator_server.url, ManualClock(), **settings):
        admin = Citizen(emulator_server.client, ADMIN)
        await admin.send("/start", expect="Hello Ada")
        await upload(admin, long_flow, name="everything.yaml", expect="a new flow")
        shown = await admin.client.wait_for_bot_message(
            admin.id, predicate=containing("the whole diff is attached"), timeout=30
        )
        assert len(shown.content) <= 4096 and "+# note 0:" in shown.content
        attached = await admin.client.wait_for_bot_message(
            admin.id, predicate=lambda m: "document" in m.raw, timeout=30
        )
        assert attached.raw["document"]["file_name"] == "everything@1.diff"
        assert attached.button_texts == ["👁 Preview", "✅ Publish", "🗑 Discard"]
        assert attached.file_url is not None
        async with (
            aiohttp.ClientSession() as http,
            http.get(emulator_server.url + attached.file_url) as response,
        ):
            diff = await response.text()
        assert diff.startswith("--- /dev/null\n+++ everything@1\n")
        assert "+# note 79:" in diff
