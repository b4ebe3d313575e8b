"""The call log names the updates each getUpdates call returned."""

from __future__ import annotations

from typing import Any

from aiogram import Bot

from bot.emulator.client import EmulatorClient
from tests.emulator.conftest import CAMILLE


def _update(update_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": CAMILLE, "type": "private", "first_name": "Camille"},
            "from": {"id": CAMILLE, "is_bot": False, "first_name": "Camille"},
            "text": "/start",
        },
    }


async def test_get_updates_calls_list_the_update_ids_they_returned(
    bot: Bot, client: EmulatorClient
) -> None:
    await bot.get_me()
    await client.inject_updates([_update(7000)] * 3 + [_update(7001)])
    await bot.get_updates(limit=2)
    await bot.get_updates(offset=7000)  # 7000 itself is not confirmed yet
    await bot.get_updates(offset=7002, timeout=0)
    polls = await client.calls(method="getUpdates")
    assert [call.update_ids for call in polls] == [
        [7000, 7000],
        [7000, 7000, 7000, 7001],
        [],
    ]
    (me,) = await client.calls(method="getMe")
    assert me.update_ids is None
