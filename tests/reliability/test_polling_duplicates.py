"""Duplicates by long polling: one update delivered a hundred times has one effect.

Three citizens stop at the last step of the report flow. The update of each one's
press on "Send the report" is then delivered again and again by getUpdates with
its update_id unchanged: 100 times in a row (each copy in its own answer, the next
one queued once the previous was returned), 100 times in one answer, and 200 times
across several answers (150 queued at once, then 50 queued concurrently). The call
log shows how the copies came; each press still makes one report, one answer to the
button and one confirmation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.emulator.client import CallLogEntry, EmulatorClient
from storage.models import InboxUpdate, Report
from tests.e2e.test_journeys import TEXTS
from tests.support.citizen import Citizen
from tests.support.emulator import EmulatorServer
from tests.support.inprocess import running_bot

T = TEXTS["en"]
FIRST_USER = 740_000
FIRST_UPDATE = 5_000_000  # below the ids the emulator hands out (random, from 10**8)


async def stop_before_sending(citizen: Citizen, number: int) -> None:
    await citizen.send("/start", expect="Hello")
    await citizen.send(T["report"], expect=T["category_q"])
    await citizen.tap(T["potholes"], expect=T["where"])
    await citizen.send(f"{number} Rue Haute", expect=T["photo_q"])
    await citizen.send("Skip ➡️", expect=T["describe"])
    await citizen.send(f"Pothole number {number} of the duplicate test", expect=T["anonymous"])
    await citizen.tap(T["yes"], expect=T["check"])


async def send_press(client: EmulatorClient, citizen: Citizen, update_id: int) -> dict[str, Any]:
    """The raw update of pressing "Send the report", as Telegram would deliver it."""
    history = await client.history(citizen.id)
    card = next(m for m in reversed(history.bot_messages) if T["send"] in m.button_texts)
    data = next(
        button["callback_data"]
        for row in card.raw["reply_markup"]["inline_keyboard"]
        for button in row
        if button["text"] == T["send"]
    )
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"press-{update_id}",
            "from": {"id": citizen.id, "is_bot": False, "first_name": citizen.user["first_name"]},
            "message": card.raw,
            "chat_instance": "dup",
            "data": data,
        },
    }


async def polls_since(client: EmulatorClient, seq: int) -> list[CallLogEntry]:
    return [c for c in await client.calls(method="getUpdates", since=seq) if c.update_ids]


async def delivered(client: EmulatorClient, update_id: int, copies: int, *, since: int) -> None:
    """Wait until getUpdates returned ``copies`` copies of the update after call ``since``."""
    cursor, count = since, 0
    while count < copies:
        call = await client.wait_for_call(
            "getUpdates",
            since=cursor,
            predicate=lambda c: update_id in (c.update_ids or []),
            timeout=60,
        )
        cursor = call.seq
        count += (call.update_ids or []).count(update_id)


async def last_seq(client: EmulatorClient) -> int:
    return max((c.seq for c in await client.calls()), default=0)


async def test_one_press_delivered_by_polling_in_a_row_at_once_and_across_answers_has_one_effect(
    emulator_server: EmulatorServer, database_url: str
) -> None:
    client = emulator_server.client
    async with running_bot(database_url, emulator_server.url, ManualClock()) as runtime:
        citizens = [
            Citizen(client, {"id": FIRST_USER + n, "first_name": f"Dup{n}", "language_code": "en"})
            for n in range(3)
        ]
        for number, citizen in enumerate(citizens):
            await stop_before_sending(citizen, number)
        row, one_answer, across = [
            await send_press(client, citizen, FIRST_UPDATE + n)
            for n, citizen in enumerate(citizens)
        ]
        start = await last_seq(client)

        # In a row: each copy is queued once the previous one was returned.
        for _ in range(100):
            cursor = await last_seq(client)
            await client.inject_update(row)
            await delivered(client, row["update_id"], 1, since=cursor)
        # At once, in one getUpdates answer (its limit is 100).
        cursor = await last_seq(client)
        assert await client.inject_updates([one_answer] * 100) == 100
        await delivered(client, one_answer["update_id"], 100, since=cursor)
        # At once, across answers: 150 queued together, then 50 concurrent requests.
        cursor = await last_seq(client)
        assert await client.inject_updates([across] * 150) == 150
        await asyncio.gather(*(client.inject_update(across) for _ in range(50)))
        await delivered(client, across["update_id"], 200, since=cursor)
        await asyncio.wait_for(runtime.inbox.processor.join(), 60)

        async with runtime.services.database.uow() as uow:
            reports = await uow.session.scalar(select(func.count()).select_from(Report))
            stored = await uow.session.scalar(
                select(func.count())
                .select_from(InboxUpdate)
                .where(
                    InboxUpdate.update_id.in_([FIRST_UPDATE, FIRST_UPDATE + 1, FIRST_UPDATE + 2])
                )
            )

    polls = await polls_since(client, start)
    copies = {
        kind: [c.update_ids.count(update["update_id"]) for c in polls if c.update_ids]
        for kind, update in (("row", row), ("one", one_answer), ("across", across))
    }
    # The copies came the way each case means.
    assert [n for n in copies["row"] if n] == [1] * 100
    assert 100 in copies["one"]
    assert sum(copies["across"]) == 200 and len([n for n in copies["across"] if n]) >= 2
    # One effect each: a report, an answer to the button, a confirmation.
    assert reports == 3 and stored == 3
    for citizen, update in zip(citizens, (row, one_answer, across), strict=True):
        query_id = update["callback_query"]["id"]
        answers = [
            c
            for c in await client.calls(method="answerCallbackQuery")
            if c.params.get("callback_query_id") == query_id
        ]
        assert len(answers) == 1, (citizen.id, answers)
        confirmations = [
            c
            for c in await client.calls(chat_id=citizen.id)
            if c.ok and T["sent"] in str(c.params.get("text"))
        ]
        assert len(confirmations) == 1, (citizen.id, confirmations)
