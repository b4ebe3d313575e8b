"""getUpdates: long polling, offsets, limits, allowed_updates and conflicts."""

from __future__ import annotations

import asyncio

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest, TelegramConflictError
from aiogram.filters import CommandStart
from aiogram.types import Message

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient
from tests.emulator.conftest import ALICE, CAMILLE, eventually


def _world(emulator: Emulator):  # type: ignore[no-untyped-def]
    return emulator.hub.world_for_user()


async def test_long_poll_returns_as_soon_as_an_update_arrives(
    bot: Bot, client: EmulatorClient, emulator: Emulator
) -> None:
    await bot.get_me()
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    await eventually(lambda: _world(emulator).poll is not None)
    await client.send_text(ALICE, "hello")
    async with asyncio.timeout(2):
        updates = await poll
    assert [u.message.text for u in updates if u.message] == ["hello"]


async def test_long_poll_times_out_with_no_updates(bot: Bot) -> None:
    assert await bot.get_updates(timeout=0) == []


async def test_offset_confirms_and_limit_caps(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    for text in ("a", "b", "c"):
        await client.send_text(ALICE, text)
    first = await bot.get_updates(limit=2)
    assert [u.message.text for u in first if u.message] == ["a", "b"]
    assert await bot.get_updates(limit=2) == first  # unconfirmed: same again
    rest = await bot.get_updates(offset=first[-1].update_id + 1)
    assert [u.message.text for u in rest if u.message] == ["c"]
    assert await bot.get_updates(offset=rest[-1].update_id + 1) == []
    assert first[1].update_id == first[0].update_id + 1


async def test_negative_offset_keeps_the_last_updates(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    for text in ("a", "b", "c"):
        await client.send_text(ALICE, text)
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["c"]
    assert [u.message.text for u in await bot.get_updates() if u.message] == ["c"]


async def test_allowed_updates_filters_and_is_remembered(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    assert await bot.get_updates(allowed_updates=["callback_query"]) == []
    await client.send_text(ALICE, "ignored")
    assert await bot.get_updates() == []  # still only callback queries
    await bot.get_updates(allowed_updates=[])  # back to the default set
    await client.send_text(ALICE, "seen")
    await client.block(ALICE)
    kinds = [u.event_type for u in await bot.get_updates()]
    assert kinds == ["message", "my_chat_member"]


async def test_get_updates_conflicts_with_a_webhook(bot: Bot) -> None:
    await bot.set_webhook("http://127.0.0.1:9/hook")
    with pytest.raises(
        TelegramConflictError, match="can't use getUpdates method while webhook is active"
    ):
        await bot.get_updates()
    await bot.delete_webhook()
    assert await bot.get_updates() == []


async def test_a_second_poller_terminates_the_first(bot: Bot, emulator: Emulator) -> None:
    await bot.get_me()
    first = asyncio.create_task(bot.get_updates(timeout=30))
    await eventually(lambda: _world(emulator).poll is not None)
    second = asyncio.create_task(bot.get_updates(timeout=30))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        async with asyncio.timeout(2):
            await first
    second.cancel()


async def test_injected_update_can_be_delivered_twice(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    update = {
        "update_id": 5000,
        "message": {
            "message_id": 1,
            "date": 1_700_000_000,
            "chat": {"id": CAMILLE, "type": "private", "first_name": "Camille"},
            "from": {"id": CAMILLE, "is_bot": False, "first_name": "Camille"},
            "text": "/start",
        },
    }
    await client.inject_update(update)
    first = await bot.get_updates()
    assert [u.update_id for u in first] == [5000]
    await client.inject_update(update)
    again = await bot.get_updates(offset=5001)
    assert [u.update_id for u in again] == [5000]
    assert await bot.get_updates(offset=5001) == []
    # The chat became known, so the bot may answer it.
    reply = await bot.send_message(CAMILLE, "Bonjour", reply_parameters={"message_id": 1})  # type: ignore[arg-type]
    assert reply.message_id == 2
    await client.send_text(ALICE, "next")
    (following,) = await bot.get_updates(offset=5001)
    assert following.update_id > 5000


async def test_aiogram_dispatcher_polls_and_answers(bot: Bot, client: EmulatorClient) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(
            f"Welcome, {message.from_user.first_name if message.from_user else ''}!"
        )

    polling = asyncio.create_task(
        dispatcher.start_polling(
            bot, handle_signals=False, close_bot_session=False, polling_timeout=5
        )
    )
    try:
        sent = await client.send_text(ALICE, "/start")
        reply = await client.wait_for_bot_message(ALICE, after=sent.message_id, timeout=5)
        assert reply.text == "Welcome, Alice!"
    finally:
        await dispatcher.stop_polling()
        await polling


async def test_injected_callback_query_can_be_answered_once(
    bot: Bot, client: EmulatorClient
) -> None:
    await bot.get_me()
    query = {
        "id": "987654321",
        "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
        "chat_instance": "42",
        "data": "answer:yes",
    }
    await client.inject_updates([{"update_id": 9, "callback_query": query}] * 2)
    updates = await bot.get_updates()
    assert [u.callback_query.id for u in updates if u.callback_query] == ["987654321"] * 2
    assert await bot.answer_callback_query("987654321", text="ok") is True
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("987654321")
