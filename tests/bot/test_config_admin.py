"""Administrators export and import configuration files in the chat; nobody else can.

Runs the real bot over the emulator: areas assign a citizen's pinned report, the
state table relabels the manager's card and the reporter's notification and
refuses a transition it forbids, and a flow file still reaches the flows router.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from aiogram import Router
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.emulator.client import ChatMessage
from bot.handlers.admin import STAFF_BUTTON_PREFIXES, STAFF_COMMANDS
from bot.handlers.config_admin import BUTTON_PREFIX, CONFIG_COMMANDS, build_config_admin_router
from bot.managers.cards import STATUS_CODES, STATUS_PREFIX
from bot.outbox.sender import OutboxSender
from storage.db import Database
from storage.models import AuditEntry, Category, ConfigDocument, FlowRevision, Report
from tests.bot.test_flows_admin import press_as
from tests.e2e.test_journeys import PLACE, TEXTS, report_journey
from tests.support.citizen import Citizen, containing
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

ADMIN = {"id": 9701, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9702, "first_name": "Max", "username": "max_cfg", "language_code": "en"}
CITIZEN = {"id": 9703, "first_name": "Cy", "language_code": "en"}
REPORTER_ID = CITIZEN["id"]

LAT, LON = PLACE
TOWN = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"code": "centre", "name_en": "Centre", "name_fr": "Centre"},
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [
                        [LON - 0.01, LAT - 0.01],
                        [LON + 0.01, LAT - 0.01],
                        [LON + 0.01, LAT + 0.01],
                        [LON - 0.01, LAT + 0.01],
                        [LON - 0.01, LAT - 0.01],
                    ]
                ],
            },
        }
    ],
}
SHIPPED_RATE = (Path(__file__).resolve().parents[2] / "dialogs/flows/rate.yaml").read_text()


def test_every_config_handler_sits_behind_the_admin_role() -> None:
    router: Router = build_config_admin_router()
    for observer in (router.message, router.callback_query):
        names = [type(f.callback).__name__ for f in observer._handler.filters or []]
        assert "RequireRole" in names, observer
    assert set(CONFIG_COMMANDS) <= set(STAFF_COMMANDS)
    assert BUTTON_PREFIX.startswith(STAFF_BUTTON_PREFIXES)


async def upload(person: Citizen, source: str, *, name: str, expect: str) -> ChatMessage:
    sent = await person.client.send_document(
        person.id, source.encode(), file_name=name, user=person.user
    )
    return await person.client.wait_for_bot_message(
        person.id, after=sent.message_id, predicate=containing(expect), timeout=30
    )


async def exported(person: Citizen, button: str) -> str:
    """Press an export button and read the document the bot sends."""
    message = await person.tap(button, expect="as it is now")
    return (await person.client.download_file(message.raw["document"]["file_id"])).decode()


async def count(database: Database, model: Any, *where: Any) -> int:
    async with database.uow() as uow:
        statement = select(func.count()).select_from(model).where(*where)
        return int(await uow.session.scalar(statement) or 0)


async def test_import_export_in_the_chat_and_everyone_else_refused(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    async with running_bot(
        database_url, emulator_server.url, ManualClock(), admin_ids=(ADMIN["id"],)
    ) as runtime:
        database = runtime.services.database
        client = emulator_server.client
        admin, manager, citizen = (Citizen(client, u) for u in (ADMIN, MANAGER, CITIZEN))
        for person in (admin, manager, citizen):
            await person.send("/start", expect="Hello")
        await admin.send("/grant manager @max_cfg roads", expect="is now manager")

        await admin.send("/config", expect="Configuration files")
        catalogue = await exported(admin, "📋 Services and categories")
        document = yaml.safe_load(catalogue)
        potholes = next(c for c in document["categories"] if c["code"] == "potholes")
        assert potholes["service"] == "roads"
        roads = next(s for s in document["services"] if s["code"] == "roads")
        assert roads["managers"] == [MANAGER["id"]]
        potholes["target_days"] = 33
        edited = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)

        # Everyone else: the command, the buttons and the files change nothing.
        audits = await count(database, AuditEntry)
        for person in (manager, citizen):
            await person.send("/config", expect="staff only")
            for data in (f"{BUTTON_PREFIX}ex:catalogue", f"{BUTTON_PREFIX}ok:catalogue:1"):
                await press_as(client, person, data)
            sent = await client.send_document(
                person.id, edited.encode(), file_name="catalogue.yaml", user=person.user
            )
            await client.wait_for_bot_message(person.id, after=sent.message_id)
        assert await count(database, ConfigDocument) == 0
        assert await count(database, AuditEntry) == audits
        assert await count(database, Category, Category.target_days == 33) == 0

        # A broken file: every problem at its line, nothing stored.
        broken = edited.replace("target_days: 33", "target_days: -1", 1)
        line = 1 + broken.splitlines().index("  target_days: -1")
        answer = await upload(admin, broken, name="catalogue.yaml", expect="was not imported")
        assert f"catalogue.yaml:{line}: 'target_days' is 1 to 365 days" in answer.content
        assert await count(database, ConfigDocument) == 0

        # The catalogue (recognised by its shape): a summary, then the import on confirmation.
        summary = await upload(admin, edited, name="catalogue.yaml", expect="Importing it")
        assert "Changed (1): category:potholes" in summary.content
        await admin.tap("✅ Import", expect="file is imported")
        assert await count(database, Category, Category.target_days == 33) == 1
        async with database.uow() as uow:
            (entry,) = await uow.repos.staff.audit_entries(action="config.import")
        assert (entry.actor.startswith("staff:"), entry.subject, entry.details["updated"]) == (
            True,
            "catalogue",
            1,
        )
        # Once only: the same button again is answered as stale.
        history = await client.history(ADMIN["id"])
        pressed = next(m for m in reversed(history.bot_messages) if "✅ Import" in m.button_texts)
        await client.press_button(ADMIN["id"], pressed.message_id, text="✅ Import")
        await client.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda call: "already confirmed" in str(call.params.get("text")),
        )
        assert await count(database, AuditEntry, AuditEntry.action == "config.import") == 1

        # A flow file goes past this router to the flows router.
        flow = SHIPPED_RATE.replace("Overall, how satisfied", "Overall, how HAPPY")
        await upload(admin, flow, name="rate.yaml", expect="Draft")
        assert await count(database, FlowRevision, FlowRevision.author.startswith("staff:")) == 1

        # Areas, by caption and shape; the export comes back the same.
        areas = json.dumps(TOWN)
        await upload(admin, areas, name="town.geojson", expect="New (1): centre")
        await admin.tap("✅ Import", expect="file is imported")
        await admin.send("/config", expect="Configuration files")
        assert (
            json.loads(await exported(admin, "🗺️ Areas (GeoJSON)"))["features"][0]["geometry"]
            == (TOWN["features"][0]["geometry"])
        )


async def test_areas_and_state_table_reach_reports_cards_and_notifications(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    async with running_bot(
        database_url, emulator_server.url, ManualClock(), admin_ids=(ADMIN["id"],)
    ) as runtime:
        database = runtime.services.database
        client = emulator_server.client
        admin, manager, reporter = (Citizen(client, u) for u in (ADMIN, MANAGER, CITIZEN))
        for person in (admin, manager, reporter):
            await person.send("/start", expect="Hello")
        await admin.send("/grant manager @max_cfg roads", expect="is now manager")
        await upload(admin, json.dumps(TOWN), name="town.json", expect="Importing it")
        await admin.tap("✅ Import", expect="file is imported")

        await admin.send("/config", expect="Configuration files")
        table = yaml.safe_load(await exported(admin, "🚦 Report state table"))
        table["statuses"]["open"]["labels"]["en"] = "waiting for us"
        table["statuses"]["fixed"]["labels"]["en"] = "sorted"
        table["statuses"]["open"]["to"] = ["in_progress", "fixed", "closed"]
        table["statuses"]["closed"]["offered"] = False
        table["statuses"]["fixed"]["to"] = ["open"]
        source = yaml.safe_dump(table, allow_unicode=True, sort_keys=False)
        summary = await upload(admin, source, name="statuses.yaml", expect="Importing it")
        assert "Changed (3): open, fixed, closed" in summary.content
        await admin.tap("✅ Import", expect="file is imported")

        # The pinned report lands in its area; /reports filters by it.
        reference = await report_journey(reporter, TEXTS["en"])
        async with database.uow() as uow:
            report = await uow.repos.reports.by_reference(reference)
            assert report is not None
            area = await uow.session.scalar(select(Report.area_id).where(Report.id == report.id))
            assert area == await uow.repos.areas.id_by_code("centre")
        listing = await manager.send("/reports area:centre", expect="waiting for us")
        assert reference in listing.content
        await manager.send("/reports area:elsewhere", expect="No report")

        sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
        await sender.drain_once()
        card = await client.wait_for_bot_message(
            MANAGER["id"], predicate=lambda m: reference in m.content and "Status:" in m.content
        )
        assert "Status: waiting for us" in card.content
        assert card.button_texts == ["in progress", "sorted"]  # closed is not offered

        await manager.tap("sorted", expect="is now “sorted”")
        await sender.drain_once()
        await client.wait_for_bot_message(
            REPORTER_ID, predicate=lambda m: reference in m.content and "sorted" in m.content
        )
        # The reporter's /status speaks the table's words too, history included.
        status = await reporter.send(f"/status {reference}", expect=reference)
        assert "sorted" in status.content and "waiting for us" in status.content

        # fixed -> closed is not in the table: a forged button is refused, nothing changes.
        audits = await count(database, AuditEntry, AuditEntry.action == "report.status")
        data = f"{STATUS_PREFIX}{report.id}:{STATUS_CODES['closed']}"
        hello = (await client.history(MANAGER["id"])).bot_messages[-1]
        await client.inject_update(
            {
                "update_id": 970001,
                "callback_query": {
                    "id": "forbidden",
                    "chat_instance": "ci",
                    "from": {"id": MANAGER["id"], "is_bot": False, "first_name": "Max"},
                    "message": {
                        "message_id": hello.message_id,
                        "date": 1,
                        "chat": {"id": MANAGER["id"], "type": "private"},
                    },
                    "data": data,
                },
            }
        )
        await client.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda call: "does not allow" in str(call.params.get("text")),
        )
        async with database.uow() as uow:
            after = await uow.repos.reports.by_id(report.id)
        assert after is not None and after.status == "fixed"
        assert await count(database, AuditEntry, AuditEntry.action == "report.status") == audits
