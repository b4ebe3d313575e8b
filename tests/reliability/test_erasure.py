"""Erasure: after /forget, no table holds the citizen's Telegram id, name or username.

One citizen gets the richest footprint the bot can give them: a report with a photo,
a description and their name shown to the managers (not anonymous), the managers'
cards about it, a manager's status change with a note, the "is it fixed?" answer
and a comment, a rating with a comment, a volunteer profile and a shift place with
its reminders, a staff role (audited), messages waiting in the outbox and failed
updates in the inbox. They erase their data with /forget. Then every column of
every table of the real database is read as text (JSON columns included) and
searched; their reports, photos, events and ratings must still be there, anonymised.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

from aiogram.methods import SendMessage
from sqlalchemy import String, cast, func, select

from bot.clock import ManualClock
from bot.outbox import enqueue
from bot.outbox.sender import OutboxSender
from bot.usecases.reports import add_report_details, change_report_status, record_fix_answer
from bot.usecases.staff import actor_of
from storage.db import Database
from storage.models import (
    Base,
    Rating,
    Report,
    ReportEvent,
    ReportPhoto,
    Signup,
)
from storage.records import IncomingUpdate
from tests.e2e.test_journeys import TEXTS, jpeg_with_gps
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot
from tests.support.needles import holds

# A Telegram id above 2**32 and names no fixture, seed or text of the bot contains.
ZOE = {
    "id": 6_203_417_985,
    "first_name": "Zoëlle-Quirinë",
    "last_name": "Vandermaesbrügge",
    "username": "zq_erasure_probe",
    "language_code": "en",
}
ADMIN = {"id": 9_701, "first_name": "Ada", "language_code": "en"}
MANAGER = {"id": 9_702, "first_name": "Max", "username": "max_erasure_mgr", "language_code": "en"}
NEIGHBOUR = {"id": 9_703, "first_name": "Nia", "language_code": "en"}
T = TEXTS["en"]


def needles(user: dict[str, object]) -> list[str]:
    """What must not be found: the id, the names and the username, as stored in text or
    in JSON (whose writer may escape non-ASCII letters)."""
    plain = [str(user["id"]), str(user["first_name"]), str(user["last_name"])]
    plain.append(str(user["username"]))
    escaped = [json.dumps(value)[1:-1] for value in plain]
    return sorted(set(plain + escaped))


async def search_everything(database: Database, wanted: Iterable[str]) -> list[str]:
    """Every column of every table, read as text: ``table.column: needle`` per hit."""
    found = []
    wanted = list(wanted)
    async with database.uow() as uow:
        for table in Base.metadata.sorted_tables:
            for column in table.columns:
                values = await uow.session.scalars(
                    select(cast(column, String)).where(column.is_not(None))
                )
                for value in values:
                    found += [f"{table.name}.{column.name}: {n}" for n in wanted if holds(value, n)]
    return sorted(set(found))


async def test_forget_leaves_no_trace_of_the_citizen_and_keeps_their_reports_anonymised(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    clock = ManualClock()
    client = emulator_server.client
    async with running_bot(
        database_url, emulator_server.url, clock, admin_ids=(ADMIN["id"],)
    ) as runtime:
        services = runtime.services
        database = services.database
        admin, manager, zoe, neighbour = (
            Citizen(client, user) for user in (ADMIN, MANAGER, ZOE, NEIGHBOUR)
        )
        await admin.send("/start", expect="Hello Ada")
        await manager.send("/start", expect="Hello Max")
        await admin.send("/grant manager @max_erasure_mgr roads", expect="is now manager")
        await zoe.send("/start", expect="Hello Zoëlle")
        await neighbour.send("/start", expect="Hello Nia")

        # A report with a pin, a photo and a description; her name is shown to managers.
        await zoe.send(T["report"], expect=T["category_q"])
        await zoe.tap(T["potholes"], expect=T["where"])
        await zoe.location(48.8566, 2.3522, expect=T["photo_q"])
        await zoe.photo(jpeg_with_gps(), expect=T["photo_1"])
        await zoe.send(T["done"], expect=T["describe"])
        await zoe.send("Deep pothole by the bus stop, since Monday", expect=T["anonymous"])
        await zoe.tap(T["no"], expect=T["check"])
        sent = await zoe.tap(T["send"], expect=T["sent"])
        reference = sent.content.split(T["sent"])[1].split()[0].strip(".")
        # A rating with a comment, through the bot.
        await zoe.send(T["rate"], expect=T["which_service"])
        await zoe.tap(T["roads_service"], expect=T["overall"])
        await zoe.tap("4", expect=T["more"])
        await zoe.tap(T["no_thanks"], expect=T["anything_else"])
        await zoe.send("Quick crew, thank you", expect=T["thanks"])
        # A conversation left open.
        await zoe.send(T["report"], expect=T["category_q"])

        # The managers' cards (her name in them) go out through the outbox.
        sender = OutboxSender(services, runtime.bot, worker_id="erasure")
        await sender.drain_once()
        card = await client.wait_for_bot_message(
            MANAGER["id"], predicate=lambda m: reference in m.content and "Zoëlle" in m.content
        )

        now = clock.now()
        zone = services.clock.now().tzinfo
        assert zone is not None
        async with database.uow() as uow:
            repos = uow.repos
            her = await repos.citizens.by_telegram_id(ZOE["id"])
            boss = await repos.citizens.by_telegram_id(MANAGER["id"])
            nia = await repos.citizens.by_telegram_id(NEIGHBOUR["id"])
            assert her is not None and boss is not None and nia is not None
            report = await repos.reports.by_reference(reference)
            assert report is not None
            await repos.reports.follow(report.id, nia.id, now=now)
            # A manager's note, "is it fixed?", her answer and a comment.
            translator = services.translator
            await change_report_status(
                uow, report.id, "in_progress", actor_of(boss), "Crew booked for Tuesday", now,
                translator=translator, timezone=zone,
            )  # fmt: skip
            await change_report_status(
                uow, report.id, "fixed", actor_of(boss), "Filled and rolled", now,
                translator=translator, timezone=zone,
            )  # fmt: skip
            assert await record_fix_answer(
                uow, her, reference, "partly", now, translator=translator, timezone=zone
            )
            assert await add_report_details(
                uow, her, reference, comment="The edge is still broken", photo_file_ids=[], now=now
            )
            # Volunteering: a profile and a place on a shift, with its reminders.
            await repos.volunteering.save_profile(
                her.id,
                skills=["first_aid"],
                areas=["north"],
                availability=["weekend_morning"],
                contact_consent=True,
                now=now,
            )
            shift = await repos.volunteering.add_opportunity(
                code="erasure-shift",
                titles={"en": "Park clean-up"},
                descriptions={"en": "Bags provided."},
                skills=["first_aid"],
                area="north",
                place="North park",
                starts_at=now + timedelta(days=3),
                ends_at=now + timedelta(days=3, hours=2),
                slots=5,
            )
            assert (await repos.volunteering.signup(shift.id, her.id, now=now)).signup_id
            # Failed updates of hers: a private message and a group message.
            for update_id, chat_id in ((990_001, ZOE["id"]), (990_002, -1_009_900)):
                payload = {
                    "update_id": update_id,
                    "message": {
                        "message_id": 1,
                        "date": 1767225600,
                        "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                        "from": {"id": ZOE["id"], "is_bot": False, **_profile(ZOE)},
                        "text": "hello",
                    },
                }
                await repos.inbox.record_failed(
                    IncomingUpdate(
                        update_id=update_id, chat_id=chat_id, user_id=ZOE["id"], payload=payload
                    ),
                    "RuntimeError: boom",
                    now,
                )
            # A manager's button press on her card failed: it quotes the card, her name in it.
            press = {
                "update_id": 990_003,
                "callback_query": {
                    "id": "press",
                    "chat_instance": "ci",
                    "from": {"id": MANAGER["id"], "is_bot": False, "first_name": "Max"},
                    "message": {
                        "message_id": card.message_id,
                        "date": 1767225600,
                        "chat": {"id": MANAGER["id"], "type": "private"},
                        "text": card.raw.get("text") or card.content,
                    },
                    "data": "m:s:1:fixed",
                },
            }
            await repos.inbox.record_failed(
                IncomingUpdate(
                    update_id=990_003,
                    chat_id=MANAGER["id"],
                    user_id=MANAGER["id"],
                    payload=press,
                ),
                "RuntimeError: boom",
                now,
            )
            # Messages still waiting for her chat, one tied to her row and one not.
            await enqueue(
                uow,
                [SendMessage(chat_id=ZOE["id"], text="A notice for Zoëlle-Quirinë")],
                chat_id=ZOE["id"],
                citizen_id=her.id,
                kind="notification",
                now=now,
            )
            await enqueue(
                uow,
                [SendMessage(chat_id=ZOE["id"], text="An untied notice")],
                chat_id=ZOE["id"],
                citizen_id=None,
                kind="notification",
                now=now,
            )
        # She becomes a manager too (a staff role and an audit entry).
        await admin.send("/grant manager @zq_erasure_probe parks", expect="is now manager")
        async with database.uow() as uow:
            photos_before = await uow.session.scalar(select(func.count()).select_from(ReportPhoto))
            events_before = await uow.session.scalar(select(func.count()).select_from(ReportEvent))
        assert photos_before and events_before

        # Before: every needle is somewhere, so the search can see them.
        assert {hit.split(": ")[1] for hit in await search_everything(database, needles(ZOE))} >= {
            str(ZOE["id"]),
            ZOE["first_name"],
            ZOE["username"],
        }

        await zoe.send("/forget", expect="Erase your personal data")
        await zoe.tap("🗑️ Yes, erase", expect="your personal data is erased")
        await runtime.inbox.processor.join()

        leftovers = await search_everything(database, needles(ZOE))
        async with database.uow() as uow:
            reports = (await uow.session.scalars(select(Report))).all()
            ratings = (await uow.session.scalars(select(Rating))).all()
            signups = (await uow.session.scalars(select(Signup))).all()
            photos = await uow.session.scalar(select(func.count()).select_from(ReportPhoto))
            events = await uow.session.scalar(select(func.count()).select_from(ReportEvent))
            notes = set((await uow.session.scalars(select(ReportEvent.note))).all())
    assert card.message_id  # the manager really got her name before
    assert leftovers == []
    assert [(r.reference, r.citizen_id, r.description) for r in reports] == [
        (reference, None, "Deep pothole by the bus stop, since Monday")
    ]
    assert [(r.citizen_id, r.comment) for r in ratings] == [(None, "Quick crew, thank you")]
    assert [s.citizen_id for s in signups] == [None]
    assert photos == photos_before and events == events_before
    assert {"Crew booked for Tuesday", "The edge is still broken"} <= notes


def _profile(user: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in user.items() if k in ("first_name", "last_name", "username")}
