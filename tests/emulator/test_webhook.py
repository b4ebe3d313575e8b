"""Webhook delivery: secret header, retries, per-chat order, replies with a method."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient
from tests.emulator.conftest import ALICE, CAMILLE, eventually

Responder = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse]]


@dataclass
class Receiver:
    """A webhook endpoint that records what it receives."""

    url: str
    deliveries: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    responder: Responder | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int, within: float = 3.0) -> None:
        async with asyncio.timeout(within), self.changed:
            await self.changed.wait_for(lambda: len(self.deliveries) >= count)

    @property
    def texts(self) -> list[str]:
        return [d[0].get("message", {}).get("text", "") for d in self.deliveries]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    server = TestServer(app, host="127.0.0.1", port=0)
    recorder = Receiver(url="")

    async def hook(request: web.Request) -> web.StreamResponse:
        update = await request.json()
        async with recorder.changed:
            recorder.deliveries.append((update, dict(request.headers)))
            recorder.changed.notify_all()
        if recorder.responder is not None:
            return await recorder.responder(request, update)
        return web.json_response({})

    app.router.add_post("/hook", hook)
    await server.start_server()
    recorder.url = str(server.make_url("/hook"))
    try:
        yield recorder
    finally:
        await server.close()


async def test_delivery_carries_the_secret_header(
    bot: Bot, client: EmulatorClient, receiver: Receiver
) -> None:
    await bot.set_webhook(receiver.url, secret_token="s3cr3t-token_")
    await client.send_text(ALICE, "hello")
    await receiver.wait_for(1)
    update, headers = receiver.deliveries[0]
    assert update["message"]["text"] == "hello"
    assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t-token_"
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.max_connections) == (receiver.url, 0, 40)


async def test_failed_deliveries_are_retried_and_recorded(
    bot: Bot, client: EmulatorClient, receiver: Receiver
) -> None:
    async def fail_twice(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        status = 500 if len(receiver.deliveries) <= 2 else 200
        return web.json_response({}, status=status)

    receiver.responder = fail_twice
    await bot.set_webhook(receiver.url)
    await client.send_text(ALICE, "persist")
    await receiver.wait_for(3)
    assert receiver.texts == ["persist"] * 3
    info = await bot.get_webhook_info()
    assert info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
    assert info.last_error_date is not None
    await client.send_text(ALICE, "next")
    await receiver.wait_for(4)
    assert receiver.texts[-1] == "next"


async def test_unreachable_webhook_keeps_updates_pending(
    bot: Bot, client: EmulatorClient, emulator: Emulator
) -> None:
    await bot.set_webhook("http://127.0.0.1:9/unreachable")
    await client.send_text(ALICE, "lost?")
    world = emulator.hub.world_for_user()
    await eventually(
        lambda: world.webhook is not None and world.webhook.last_error_message is not None
    )
    info = await bot.get_webhook_info()
    assert info.pending_update_count == 1
    assert info.last_error_message == "Connection refused"
    await bot.delete_webhook()
    assert [u.message.text for u in await bot.get_updates() if u.message] == ["lost?"]


async def test_drop_pending_updates(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    await client.send_text(ALICE, "old")
    await bot.set_webhook("http://127.0.0.1:9/x", drop_pending_updates=True)
    await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates() == []


async def test_order_is_kept_per_chat_while_chats_run_concurrently(
    bot: Bot, client: EmulatorClient, receiver: Receiver
) -> None:
    release = asyncio.Event()

    async def slow_for_alice(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        if update["message"]["chat"]["id"] == ALICE:
            await release.wait()
        return web.json_response({})

    receiver.responder = slow_for_alice
    await bot.set_webhook(receiver.url)
    await client.send_text(ALICE, "a1")
    await client.send_text(ALICE, "a2")
    await client.send_text(CAMILLE, "c1")
    await receiver.wait_for(2)  # Camille's update overtakes Alice's blocked lane
    assert receiver.texts == ["a1", "c1"]
    release.set()
    await receiver.wait_for(3)
    assert receiver.texts == ["a1", "c1", "a2"]


async def test_same_update_injected_concurrently_is_delivered_in_parallel(
    bot: Bot, client: EmulatorClient, receiver: Receiver
) -> None:
    both_arrived = asyncio.Event()

    async def hold_until_both(request: web.Request, update: dict[str, Any]) -> web.StreamResponse:
        if len(receiver.deliveries) == 2:
            both_arrived.set()
        await asyncio.wait_for(both_arrived.wait(), 3)
        return web.json_response({})

    receiver.responder = hold_until_both
    await bot.set_webhook(receiver.url)
    update = {
        "update_id": 42,
        "message": {
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "text": "twice",
        },
    }
    assert await client.inject_updates([update, update], concurrent=True) == 2
    await receiver.wait_for(2)
    assert [d[0]["update_id"] for d in receiver.deliveries] == [42, 42]


async def test_webhook_answer_with_a_method_is_executed(
    bot: Bot, client: EmulatorClient, receiver: Receiver
) -> None:
    async def answer_with_method(
        request: web.Request, update: dict[str, Any]
    ) -> web.StreamResponse:
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})

    receiver.responder = answer_with_method
    await bot.set_webhook(receiver.url)
    sent = await client.send_text(ALICE, "ping")
    reply = await client.wait_for_bot_message(ALICE, after=sent.message_id, timeout=3)
    assert reply.text == "pong"
    (call,) = await client.calls(method="sendMessage")
    assert call.source == "webhook_reply"


async def test_aiogram_webhook_reply_in_multipart_is_executed(
    bot: Bot, client: EmulatorClient, base_url: str
) -> None:
    dispatcher = Dispatcher()

    @dispatcher.message()
    async def echo(message: Message) -> Any:
        return message.answer(f"echo: {message.text}")  # the reply travels in the webhook answer

    app = web.Application()
    SimpleRequestHandler(
        dispatcher, bot, handle_in_background=False, secret_token="abc_DEF-123"
    ).register(app, path="/webhook")
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        await bot.set_webhook(str(server.make_url("/webhook")), secret_token="abc_DEF-123")
        sent = await client.send_text(ALICE, "hi")
        reply = await client.wait_for_bot_message(ALICE, after=sent.message_id, timeout=3)
        assert reply.text == "echo: hi"
    finally:
        await server.close()


async def test_webhook_info_without_webhook(bot: Bot) -> None:
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count, info.has_custom_certificate) == ("", 0, False)


async def test_bad_secret_token_is_refused(bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="secret token contains unallowed characters"):
        await bot.set_webhook("http://127.0.0.1:9/x", secret_token="no spaces!")
