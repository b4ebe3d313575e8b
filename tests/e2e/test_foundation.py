"""The real bot process against the emulator over HTTP: polling, webhook, durability."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.emulator.client import ChatMessage
from storage.db import Database
from storage.models import Citizen, InboxUpdate
from tests.e2e.conftest import BotFactory
from tests.support.emulator import EmulatorServer

pytestmark = pytest.mark.e2e

ALICE = {"id": 5001, "first_name": "Alice", "language_code": "en"}
ZOE = {"id": 5002, "first_name": "Zoé", "language_code": "fr"}
SECRET = "e2e_webhook-secret"


def has_text(fragment: str) -> Any:
    def check(message: ChatMessage) -> bool:
        return fragment in message.content

    check.__name__ = f"a message containing {fragment!r}"
    return check


async def count(database_url: str, statement: Any) -> int:
    async with open_database(database_url) as database, database.uow() as uow:
        return int(await uow.session.scalar(statement) or 0)


async def test_start_greets_in_english_and_french_and_language_is_remembered(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str
) -> None:
    await start_bot()
    client = emulator_server.client

    sent = await client.send_text(ALICE["id"], "/start", user=ALICE)
    welcome = await client.wait_for_bot_message(
        ALICE["id"], after=sent.message_id, predicate=has_text("Hello Alice")
    )
    history = await client.history(ALICE["id"])
    assert "📣 Report an issue" in history.keyboard_texts
    assert "report a problem" in welcome.content

    sent = await client.send_text(ZOE["id"], "/start", user=ZOE)
    await client.wait_for_bot_message(
        ZOE["id"], after=sent.message_id, predicate=has_text("Bonjour Zoé")
    )
    assert "📣 Signaler un problème" in (await client.history(ZOE["id"])).keyboard_texts

    sent = await client.send_text(ALICE["id"], "/language", user=ALICE)
    picker = await client.wait_for_bot_message(
        ALICE["id"], after=sent.message_id, predicate=has_text("Which language")
    )
    await client.press_button(ALICE["id"], picker.message_id, text="Français")
    changed = await client.wait_for_bot_message(
        ALICE["id"], after=picker.message_id, predicate=has_text("je vous parlerai en français")
    )
    sent = await client.send_text(ALICE["id"], "/help", user=ALICE)
    await client.wait_for_bot_message(
        ALICE["id"],
        after=max(sent.message_id, changed.message_id),
        predicate=has_text("Ce que je peux faire"),
    )

    async with open_database(database_url) as database, database.uow() as uow:
        alice = await uow.repos.citizens.by_telegram_id(ALICE["id"])
    assert alice is not None
    assert alice.language == "fr" and alice.language_chosen
    assert alice.consented_at is not None


async def test_a_sticker_and_a_stale_button_get_an_answer(
    emulator_server: EmulatorServer, start_bot: BotFactory
) -> None:
    await start_bot()
    client = emulator_server.client
    sent = await client.send_sticker(ALICE["id"], user=ALICE)
    await client.wait_for_bot_message(
        ALICE["id"], after=sent.message_id, predicate=has_text("did not understand")
    )


@asynccontextmanager
async def open_database(url: str) -> AsyncIterator[Database]:
    """A Database for checking what the bot process left, closed afterwards."""
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()


def raw_update(update_id: int, user: dict[str, Any], text: str, message_id: int) -> dict[str, Any]:
    """An update as Telegram sends it, for delivering the very same one twice."""
    entities = (
        [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        if text.startswith("/")
        else []
    )
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 1767225600,
            "chat": {"id": user["id"], "type": "private", "first_name": user["first_name"]},
            "from": {
                "id": user["id"],
                "is_bot": False,
                **{k: v for k, v in user.items() if k != "id"},
            },
            "text": text,
            "entities": entities,
        },
    }


async def welcomes(client: Any, chat_id: int) -> list[ChatMessage]:
    history = await client.history(chat_id)
    return [m for m in history.bot_messages if "Hello" in m.content]


async def test_one_update_delivered_twice_in_a_row_and_at_once_is_handled_once(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str
) -> None:
    bot = await start_bot()
    client = emulator_server.client
    # A first exchange so that the chat exists on the emulator's side.
    sent = await client.send_text(ALICE["id"], "/help", user=ALICE)
    await client.wait_for_bot_message(
        ALICE["id"], after=sent.message_id, predicate=has_text("/start")
    )

    first = raw_update(900001, ALICE, "/start", 9001)
    await client.inject_update(first)
    await client.inject_update(first)
    await client.wait_for_bot_message(ALICE["id"], predicate=has_text("Hello Alice"))
    second = raw_update(900002, ALICE, "/start", 9002)
    await client.inject_updates([second] * 5)
    # A marker update after the duplicates: once it is answered, they were all seen.
    marker = raw_update(900003, ALICE, "/help", 9003)
    await client.inject_update(marker)
    await client.wait_until(
        ALICE["id"],
        lambda history: sum("/language" in m.content for m in history.bot_messages) >= 2,
        description="the answer to the marker /help",
    )
    replies = await client.calls(method="sendMessage", chat_id=ALICE["id"])
    assert len([c for c in replies if "Hello" in str(c.params.get("text"))]) == 1
    assert len([c for c in replies if "Welcome back" in str(c.params.get("text"))]) == 1
    assert await count(database_url, select(func.count()).select_from(InboxUpdate)) >= 4
    assert await count(database_url, select(func.count()).select_from(Citizen)) == 1
    assert bot.returncode is None


async def test_webhook_rejects_wrong_secrets_before_storing_and_handles_the_right_one(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str
) -> None:
    from tests.support.botprocess import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/webhook"
    await start_bot(WEBHOOK_URL=url, WEBHOOK_SECRET=SECRET, WEB_PORT=str(port))
    update = raw_update(700001, ALICE, "/start", 1)
    async with aiohttp.ClientSession() as http:
        for headers in (
            {},
            {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
        ):
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 401
        assert await count(database_url, select(func.count()).select_from(InboxUpdate)) == 0
        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
            assert response.status == 200
            assert (await response.json())["database"] == "ok"

    client = emulator_server.client
    info = await client.bot_info()
    assert info.mode == "webhook"
    sent = await client.send_text(ALICE["id"], "/start", user=ALICE)
    await client.wait_for_bot_message(
        ALICE["id"], after=sent.message_id, predicate=has_text("Hello Alice")
    )

    # The same update twice, and five times at once, through the webhook: one effect each.
    await client.inject_updates([raw_update(700002, ALICE, "/help", 50)] * 2)
    await client.inject_updates([raw_update(700003, ALICE, "/start", 51)] * 5, concurrent=True)
    await client.wait_until(
        ALICE["id"],
        lambda history: any("Welcome back" in m.content for m in history.bot_messages),
        description="the answer to the webhook /start",
    )
    await client.inject_update(raw_update(700004, ALICE, "/language", 52))
    await client.wait_for_bot_message(ALICE["id"], predicate=has_text("Which language"))
    replies = await client.calls(method="sendMessage", chat_id=ALICE["id"])
    assert len([c for c in replies if "Welcome back" in str(c.params.get("text"))]) == 1
    assert len([c for c in replies if "What I can do" in str(c.params.get("text"))]) == 1


async def test_killed_after_storing_then_restarted_handles_the_update_exactly_once(
    emulator_server: EmulatorServer, start_bot: BotFactory, database_url: str
) -> None:
    client = emulator_server.client
    doomed = await start_bot(CITIZENBOT_FAILPOINTS="after_store")
    await client.send_text(ALICE["id"], "/start", user=ALICE)
    assert await doomed.wait_exit() == -9
    assert (
        await count(
            database_url,
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.status == "pending"),
        )
        == 1
    )
    assert await client.calls(method="sendMessage") == []

    await start_bot()
    await client.wait_for_bot_message(ALICE["id"], predicate=has_text("Hello Alice"))
    # The Bot API delivers the unconfirmed update again; the inbox recognises it.
    await client.wait_for_call("getUpdates", predicate=lambda call: bool(call.params.get("offset")))
    sent = await client.send_text(ALICE["id"], "/help", user=ALICE)
    await client.wait_for_bot_message(
        ALICE["id"], after=sent.message_id, predicate=has_text("/language")
    )
    replies = await client.calls(method="sendMessage", chat_id=ALICE["id"])
    assert len([c for c in replies if "Hello Alice" in str(c.params.get("text"))]) == 1
    assert (
        await count(
            database_url,
            select(func.count()).select_from(InboxUpdate).where(InboxUpdate.status != "done"),
        )
        == 0
    )


async def test_updates_of_many_chats_are_all_answered(
    emulator_server: EmulatorServer, start_bot: BotFactory
) -> None:
    await start_bot()
    client = emulator_server.client
    users = [{"id": 6000 + n, "first_name": f"User{n}", "language_code": "en"} for n in range(20)]
    await asyncio.gather(*(client.send_text(user["id"], "/start", user=user) for user in users))
    for user in users:
        await client.wait_for_bot_message(
            user["id"], predicate=has_text(f"Hello {user['first_name']}")
        )
