"""An update handled at once is answered when it is durable, not when its replies are sent.

The Bot API waits for the webhook's answer (and polling for the next call) before it
sends more, and a reply is a round trip to Telegram's servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.app import Runtime, build_runtime, prepare_content
from bot.config import Settings
from bot.runtime.inbox import to_incoming
from storage.migrate import upgrade
from storage.records import IncomingUpdate
from tests.support.botprocess import TEST_TOKEN
from tests.support.updates import bot_api, private_message

DEADLINE = 10.0
CHAT = 4242


class HeldApi:
    """A Bot API whose sendMessage answers only once released; it records the texts."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.asked: list[str] = []
        self.sent: list[str] = []
        self.arrived = asyncio.Condition()

    async def method(self, request: web.Request) -> web.Response:
        params = await request.json()
        async with self.arrived:
            self.asked.append(params.get("text", ""))
            self.arrived.notify_all()
        await self.release.wait()
        self.sent.append(params.get("text", ""))
        message = {"message_id": len(self.sent), "date": 0, "chat": {"id": 1, "type": "private"}}
        return web.json_response({"ok": True, "result": message})

    async def asked_for(self, count: int) -> None:
        async with asyncio.timeout(DEADLINE), self.arrived:
            await self.arrived.wait_for(lambda: len(self.asked) >= count)


@pytest.fixture
async def api() -> AsyncIterator[tuple[HeldApi, str]]:
    held = HeldApi()
    async with bot_api(held.method) as base:
        try:
            yield held, base
        finally:
            held.release.set()


@pytest.fixture
async def runtime(tmp_path: Path, api: tuple[HeldApi, str]) -> AsyncIterator[Runtime]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'answer.db'}"
    await upgrade(url)
    built = build_runtime(Settings(database_url=url), api_base=api[1], token=TEST_TOKEN)
    await prepare_content(built)
    try:
        yield built
    finally:
        api[0].release.set()
        await built.inbox.processor.close(grace=DEADLINE)
        await built.bot.session.close()
        await built.services.database.dispose()


def message(update_id: int, text: str) -> dict[str, Any]:
    return private_message(update_id, CHAT, text=text)


def incoming(runtime: Runtime, document: dict[str, Any]) -> IncomingUpdate:
    return to_incoming(runtime.inbox.parse(document), document)


async def test_the_answer_comes_at_the_commit_and_the_reply_follows(
    runtime: Runtime, api: tuple[HeldApi, str]
) -> None:
    held, _ = api
    inbox = runtime.inbox
    async with asyncio.timeout(DEADLINE):
        assert await inbox.receive([incoming(runtime, message(1, "/start"))]) == [1]
    # Answered while the reply is still on its way: the update is already durable.
    await held.asked_for(1)
    assert held.sent == []
    async with runtime.services.database.uow() as uow:
        assert (await uow.repos.inbox.stats()).done == 1
    # The same chat's next update waits behind the first one's replies.
    async with asyncio.timeout(DEADLINE):
        assert await inbox.receive([incoming(runtime, message(2, "/help"))]) == [2]
    assert len(held.asked) == 1
    held.release.set()
    async with asyncio.timeout(DEADLINE):
        await inbox.processor.join()
    welcome = runtime.services.translator.text("en", "start.welcome", name="Ada")
    assert len(held.sent) == 2
    assert held.sent[0] == welcome  # in the order the citizen wrote
    assert held.sent[1] != welcome


async def test_a_failure_before_the_commit_still_reaches_the_caller(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_args: Any, **_kwargs: Any) -> bool:
        raise ConnectionError("the database is gone")

    monkeypatch.setattr("storage.repositories.inbox.InboxRepository.open", refuse, raising=True)
    monkeypatch.setattr(
        "storage.repositories.inbox.InboxRepository.record_failed", refuse, raising=True
    )
    with pytest.raises(ConnectionError):
        async with asyncio.timeout(DEADLINE):
            await runtime.inbox.receive([incoming(runtime, message(3, "hello"))])


async def test_an_update_marked_elsewhere_meanwhile_leaves_nothing_and_sends_nothing(
    runtime: Runtime, api: tuple[HeldApi, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def marked_elsewhere(*_args: Any, **_kwargs: Any) -> bool:
        return False

    monkeypatch.setattr(
        "storage.repositories.inbox.InboxRepository.settle", marked_elsewhere, raising=True
    )
    async with asyncio.timeout(DEADLINE):
        assert await runtime.inbox.receive([incoming(runtime, message(5, "/start"))]) == []
        await runtime.inbox.processor.join()
    monkeypatch.undo()
    async with runtime.services.database.uow() as uow:
        assert (await uow.repos.inbox.stats()).done == 0  # rolled back
        assert await uow.repos.citizens.by_telegram_id(CHAT) is None
    assert api[0].asked == []
