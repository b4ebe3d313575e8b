"""/digest, /subscribe and /export over the emulator, and refusals for everyone else."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram import Router

from bot.clock import ManualClock
from bot.handlers import digests as digest_handlers
from bot.handlers.admin import STAFF_BUTTON_PREFIXES, STAFF_COMMANDS
from bot.handlers.digests import DIGEST_COMMANDS, PREFIX, build_digest_router
from bot.outbox.sender import OutboxSender
from bot.usecases.digests import compose_digest
from storage.db import Database
from tests.digests.seed import seed_world
from tests.digests.support import add_manager
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

MANAGER = {"id": 9601, "first_name": "Max", "language_code": "en"}
CITIZEN = {"id": 9602, "first_name": "Cy", "language_code": "en"}
NOW = datetime(2026, 3, 9, 10, tzinfo=UTC)


def test_every_digest_handler_sits_behind_the_role_filter() -> None:
    router: Router = build_digest_router()
    for observer in (router.message, router.callback_query):
        names = [type(f.callback).__name__ for f in observer._handler.filters or []]
        assert "RequireRole" in names, observer
    assert set(DIGEST_COMMANDS) <= set(STAFF_COMMANDS)
    assert PREFIX in STAFF_BUTTON_PREFIXES


async def deliver(sender: OutboxSender, clock: ManualClock) -> None:
    """Drain the outbox, letting the (manual) clock pass the 1-per-second chat pacing."""
    for _ in range(4):
        await sender.drain_once()
        clock.advance(timedelta(seconds=2))


async def seeded(database_url: str) -> int:
    """The digest world, with MANAGER managing street lights; returns that service."""
    database = Database(database_url)
    try:
        async with database.uow() as uow:
            world = await seed_world(uow)
        await add_manager(database, MANAGER["id"], [world.lights], NOW)
    finally:
        await database.dispose()
    return world.lights


async def test_digest_now_comes_through_the_outbox_with_its_chart(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    await seeded(database_url)
    clock = ManualClock(NOW)
    client = emulator_server.client
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        sender = OutboxSender(runtime.services, runtime.bot, worker_id="test")
        manager = Citizen(client, MANAGER)
        sent = await manager.send("/digest", expect="on its way")
        # The digest is read after the reply, once the update committed: wait for it.
        await runtime.inbox.processor.join()
        await runtime.services.background.join()
        await deliver(sender, clock)
        digest = await client.wait_for_bot_message(
            MANAGER["id"], after=sent.message_id, predicate=lambda m: "Digest:" in m.content
        )
        assert "Street lights" in digest.content or "Broken light" in digest.content
        chart = await client.wait_for_bot_message(
            MANAGER["id"], after=digest.message_id, predicate=lambda m: "photo" in m.raw
        )
        assert "Reports received and fixed" in chart.content
        file_id = chart.raw["photo"][-1]["file_id"]
        assert (await client.download_file(file_id)).startswith(b"\x89PNG")


async def test_a_digest_is_read_while_the_bot_goes_on_writing(
    emulator_server: EmulatorServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/digest reads after its update committed, by a reader: a long digest holds no
    write lock (other citizens' answers are stored meanwhile) and blocks no one."""
    await seeded(database_url)
    reading, release = asyncio.Event(), asyncio.Event()

    async def slow_compose(*args: Any, **kwargs: Any) -> Any:
        reading.set()
        await release.wait()
        return await compose_digest(*args, **kwargs)

    monkeypatch.setattr(digest_handlers, "compose_digest", slow_compose)
    async with running_bot(database_url, emulator_server.url, ManualClock(NOW)) as runtime:
        await emulator_server.client.send_text(MANAGER["id"], "/digest", user=MANAGER)
        async with asyncio.timeout(10):
            await reading.wait()
            # While the digest is being read, a citizen starts and is stored.
            await Citizen(emulator_server.client, CITIZEN).send("/start", expect="Hello")
            async with runtime.services.database.uow() as uow:
                assert await uow.repos.citizens.by_telegram_id(CITIZEN["id"]) is not None
        release.set()
        await runtime.inbox.processor.join()
        await runtime.services.background.join()
        async with runtime.services.database.uow() as uow:
            assert (await uow.repos.outbox.stats(NOW)).count("pending") >= 1  # digest queued


async def test_a_digest_that_fails_after_the_commit_gets_an_apology(
    emulator_server: EmulatorServer, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seeded(database_url)

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("the digest could not be read")

    monkeypatch.setattr(digest_handlers, "compose_digest", broken)
    async with running_bot(database_url, emulator_server.url, ManualClock(NOW)):
        manager = Citizen(emulator_server.client, MANAGER)
        await manager.send("/digest", expect="on its way")
        await emulator_server.client.wait_for_bot_message(
            MANAGER["id"], predicate=lambda m: "something went wrong" in m.content
        )


async def test_subscribe_with_buttons_then_unsubscribe(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    await seeded(database_url)
    clock = ManualClock(NOW)
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        manager = Citizen(emulator_server.client, MANAGER)
        panel = await manager.send("/subscribe", expect="Your digest")
        assert "Every Monday" in panel.content and "08:00" in panel.content
        await manager.tap("Daily", expect="Every day")
        await manager.tap("18", expect="18:00")
        await manager.send("/subscribe tz Mars/Olympus", expect="I do not know the time zone")
        await manager.send("/subscribe tz America/Montreal", expect="America/Montreal")
        # The only service cannot be switched off.
        history = await emulator_server.client.history(MANAGER["id"])
        press = await emulator_server.client.press_button(
            MANAGER["id"],
            history.bot_messages[-1].message_id,
            text="✅ Street lights",
            wait_answer=10,
        )
        assert press.answer is not None and "at least one service" in str(press.answer.text)

        async with runtime.services.database.uow() as uow:
            person = await uow.repos.citizens.by_telegram_id(MANAGER["id"])
            assert person is not None
            saved = await uow.repos.digest_subscriptions.for_citizen(person.id)
        assert saved is not None
        assert (saved.frequency, saved.weekday, saved.hour, saved.timezone) == (
            "daily",
            None,
            18,
            "America/Montreal",
        )
        # 18:00 in Montreal (EDT from 8 March) is 22:00 UTC.
        assert saved.next_due_at == datetime(2026, 3, 9, 22, tzinfo=UTC)

        await manager.tap("🔕 Unsubscribe", expect="no more digests")
        await manager.send("/subscribe off", expect="were not subscribed")
        async with runtime.services.database.uow() as uow:
            assert await uow.repos.digest_subscriptions.for_citizen(person.id) is None
            actions = [e.action for e in await uow.repos.staff.audit_entries(limit=50)]
        assert actions.count("digest.subscribe") == 4
        assert actions[0] == "digest.unsubscribe"


async def test_export_sends_both_csv_files_of_the_managers_services(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    await seeded(database_url)
    clock = ManualClock(NOW)
    client = emulator_server.client
    async with running_bot(database_url, emulator_server.url, clock) as runtime:
        manager = Citizen(client, MANAGER)
        await manager.send("/export 2026-13-01", expect="Use: /export")
        first = await manager.send("/export 2026-03-01 2026-03-07", expect="Reports, 2026-03-01")
        second = await client.wait_for_bot_message(
            MANAGER["id"], after=first.message_id, predicate=lambda m: "Ratings" in m.content
        )
        tables = {}
        for message in (first, second):
            document = message.raw["document"]
            content = await client.download_file(document["file_id"])
            tables[document["file_name"]] = list(
                csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
            )
        reports = tables["reports-2026-03-01-2026-03-07.csv"]
        ratings = tables["ratings-2026-03-01-2026-03-07.csv"]
        assert sorted(row["reference"] for row in reports)
        assert {row["service"] for row in reports} == {"lights"}
        assert len(reports) == 3  # L1, L2, L3: lights reports of 1-7 March
        assert "3 row(s)" in first.content
        assert {row["service"] for row in ratings} == {"lights"}
        assert not any(key in ratings[0] for key in ("citizen_id", "telegram_id", "pseudonym"))
        async with runtime.services.database.uow() as uow:
            entries = await uow.repos.staff.audit_entries(action="digest.export")
        assert len(entries) == 1
        assert entries[0].details["reports"] == 3


async def test_a_citizen_pressing_a_digest_button_is_refused(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    client = emulator_server.client
    async with running_bot(database_url, emulator_server.url, ManualClock(NOW)) as runtime:
        citizen = Citizen(client, CITIZEN)
        for command in DIGEST_COMMANDS:
            await citizen.send(f"/{command}", expect="staff only")
        sent = await client.send_text(CITIZEN["id"], "x", user=CITIZEN)
        await client.wait_for_bot_message(CITIZEN["id"], after=sent.message_id)
        await client.inject_update(
            {
                "update_id": 990101,
                "callback_query": {
                    "id": "cq-digest",
                    "chat_instance": "ci",
                    "from": {"id": CITIZEN["id"], "is_bot": False, "first_name": "Cy"},
                    "message": {
                        "message_id": sent.message_id,
                        "date": 1,
                        "chat": {"id": CITIZEN["id"], "type": "private"},
                    },
                    "data": f"{PREFIX}f:daily",
                },
            }
        )
        await client.wait_for_call(
            "answerCallbackQuery",
            predicate=lambda call: "staff only" in str(call.params.get("text")),
        )
        async with runtime.services.database.uow() as uow:
            assert await uow.repos.digest_subscriptions.count() == 0
