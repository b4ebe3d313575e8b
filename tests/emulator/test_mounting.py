"""The emulator mounted on the bot's own web app, and its shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.types import BufferedInputFile, InputMediaDocument, InputMediaPhoto
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient
from tests.emulator.conftest import ALICE, CAMILLE, eventually, make_bot


@pytest.fixture
async def host_app_url() -> AsyncIterator[tuple[str, Emulator]]:
    """A host app with its own routes and aiohttp's default 1 MiB body limit."""

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    emulator = Emulator()
    emulator.setup(app)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), emulator
    finally:
        await server.close()


async def test_mounted_next_to_the_host_routes_and_accepts_big_uploads(
    host_app_url: tuple[str, Emulator],
) -> None:
    base_url, _ = host_app_url
    bot = make_bot(base_url)
    try:
        async with EmulatorClient(base_url) as client:
            await bot.get_me()
            await client.send_text(ALICE, "/start")
            big = b"x" * (3 * 1024 * 1024)
            sent = await bot.send_document(ALICE, BufferedInputFile(big, "big.bin"))
            assert sent.document is not None
            assert sent.document.file_size == len(big)
            async with client._http().get(f"{base_url}/healthz") as response:
                assert await response.json() == {"status": "ok"}
    finally:
        await bot.session.close()


async def test_closing_ends_pending_long_polls(host_app_url: tuple[str, Emulator]) -> None:
    base_url, emulator = host_app_url
    bot = make_bot(base_url)
    try:
        async with EmulatorClient(base_url) as client:
            await client.send_text(ALICE, "/start")
            await bot.get_updates(offset=-1)
            (last,) = await bot.get_updates()
            polling = asyncio.create_task(bot.get_updates(offset=last.update_id + 1, timeout=30))
            history = asyncio.create_task(client.history(ALICE, since=10_000, wait=30))
            world = emulator.hub.world_for_user()
            await eventually(lambda: world.poll is not None)
            await emulator.close()
            async with asyncio.timeout(2):
                assert await polling == []
                assert (await history).messages == []
    finally:
        await bot.session.close()


async def test_media_group_copy_and_forward(bot: Bot, client: EmulatorClient) -> None:
    await bot.get_me()
    await client.send_text(ALICE, "/start")
    await client.send_text(CAMILLE, "/start")
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (4).to_bytes(4, "big") * 2
    album = await bot.send_media_group(
        ALICE,
        [
            InputMediaPhoto(media=BufferedInputFile(png, "a.png"), caption="first"),
            InputMediaDocument(media=BufferedInputFile(b"doc", "b.txt")),
        ],
    )
    assert [m.media_group_id is not None for m in album] == [True, True]
    assert album[0].photo is not None
    assert album[1].document is not None
    copied = await bot.copy_message(CAMILLE, ALICE, album[0].message_id, caption="copied")
    forwarded = await bot.forward_message(CAMILLE, ALICE, album[1].message_id)
    assert forwarded.forward_origin is not None
    history = await client.history(CAMILLE)
    kept = {m.message_id: m for m in history.messages}
    assert kept[copied.message_id].caption == "copied"
    assert kept[copied.message_id].file_url is not None
