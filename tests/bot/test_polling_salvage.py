"""Polling: an update this aiogram cannot read is kept as failed; the rest go on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

from aiogram import Bot
from aiogram.methods import GetUpdates
from sqlalchemy import select

from bot.app import build_runtime
from bot.config import Settings
from bot.runtime.polling import poll_updates
from storage.migrate import upgrade
from storage.models import InboxUpdate
from tests.support.botprocess import TEST_TOKEN
from tests.support.updates import private_message

# A poll as an older Bot API sent it: today's aiogram requires fields it lacks.
OLD_POLL = {
    "poll": {
        "id": "p",
        "question": "?",
        "options": [{"text": "a", "voter_count": 0}],
        "total_voter_count": 0,
        "is_closed": False,
        "is_anonymous": True,
        "type": "regular",
        "allows_multiple_answers": False,
    }
}


async def test_an_unreadable_update_is_kept_as_failed_and_the_others_are_handled(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'polling.db'}"
    await upgrade(url)
    runtime = build_runtime(
        Settings(database_url=url), api_base="http://127.0.0.1:9", token=TEST_TOKEN
    )
    answer = {
        "ok": True,
        "result": [
            private_message(41, 501, text="/help"),
            private_message(42, 502, **OLD_POLL),
            private_message(43, 503, text="/help"),
        ],
    }
    offsets: list[int | None] = []
    stopping = asyncio.Event()

    async def get_updates(method: GetUpdates, **_: Any) -> list[Any]:
        offsets.append(method.offset)
        if len(offsets) == 1:
            # What aiogram's session does with the answer: it cannot read it whole.
            runtime.bot.session.check_response(runtime.bot, method, 200, json.dumps(answer))
            raise AssertionError("aiogram read the old poll: this test needs another update")
        stopping.set()
        return []

    try:
        await asyncio.wait_for(
            poll_updates(
                cast(Bot, get_updates),
                runtime.inbox,
                poll_timeout=0,
                allowed_updates=[],
                stopping=stopping,
            ),
            10,
        )
        assert offsets == [None, 44]
        await asyncio.wait_for(runtime.inbox.processor.join(), 10)
        async with runtime.services.database.uow() as uow:
            rows = {
                row.update_id: row for row in (await uow.session.scalars(select(InboxUpdate))).all()
            }
        assert {update_id: row.status for update_id, row in rows.items()} == {
            41: "done",
            42: "failed",
            43: "done",
        }
        kept = rows[42]
        assert (kept.chat_id, kept.user_id, kept.error) == (502, 502, "ValidationError")
        assert kept.payload == answer["result"][1]  # type: ignore[index]
    finally:
        await runtime.bot.session.close()
        await runtime.services.database.dispose()
