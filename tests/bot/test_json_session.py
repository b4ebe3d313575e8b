"""JsonSession: Bot API calls as one JSON document, the same parameters as aiogram's form."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import ClientDecodeError, TelegramBadRequest, TelegramNetworkError
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageText,
    SendDocument,
    SendLocation,
    SendMessage,
    TelegramMethod,
)
from aiogram.types import (
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)
from aiohttp import web

from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import JsonSession, result_unread
from tests.support.updates import bot_api

TOKEN = "42:TEST"

MENU = ReplyKeyboardMarkup(
    keyboard=[[KeyboardButton(text="Report")], [KeyboardButton(text="Rate")]],
    resize_keyboard=True,
    is_persistent=True,
)
CHOICES = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Yes é ✓", callback_data="a:1")]]
)
CALLS: list[TelegramMethod[Any]] = [
    SendMessage(chat_id=7, text="Bonjour <b>&amp;</b> ✓", reply_markup=MENU),
    SendMessage(chat_id=7, text="quiet", disable_notification=False, reply_markup=CHOICES),
    EditMessageText(chat_id=7, message_id=3, text="edited", reply_markup=CHOICES),
    AnswerCallbackQuery(callback_query_id="q1", text="done", show_alert=True),
    SendLocation(chat_id=7, latitude=48.85, longitude=2.35),
]


class Recorder:
    """A Bot API that records each call's content type and parameters."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.refuse = False
        self.odd = False  # a sent message's answer aiogram cannot read

    async def method(self, request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = {
                key: value if isinstance(value, str) else ("file", value.filename)
                for key, value in (await request.post()).items()
            }
        self.calls.append((name, request.content_type, params))
        if self.refuse:
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                status=400,
            )
        if name == "answerCallbackQuery":
            return web.json_response({"ok": True, "result": True})
        if self.odd:
            return web.json_response({"ok": True, "result": {"message_id": "not a number"}})
        message = {"message_id": 99, "date": 0, "chat": {"id": 7, "type": "private"}}
        return web.json_response({"ok": True, "result": message})


@pytest.fixture
async def api() -> AsyncIterator[tuple[Recorder, str]]:
    recorder = Recorder()
    async with bot_api(recorder.method) as base:
        yield recorder, base


def bot_on(session: AiohttpSession) -> Bot:
    return Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def decoded_form(params: dict[str, Any]) -> dict[str, Any]:
    """aiogram's form with its JSON-encoded objects read back, and numbers as numbers."""
    decoded = {}
    for key, value in params.items():
        try:
            decoded[key] = json.loads(value)
        except ValueError:
            decoded[key] = value
    return decoded


async def test_each_call_carries_the_parameters_of_aiogram_s_form_as_json(
    api: tuple[Recorder, str],
) -> None:
    recorder, base = api
    server = TelegramAPIServer.from_base(base)
    for session in (AiohttpSession(api=server), JsonSession(api=server)):
        bot = bot_on(session)
        try:
            for call in CALLS:
                await bot(call)
        finally:
            await bot.session.close()
    forms, documents = recorder.calls[: len(CALLS)], recorder.calls[len(CALLS) :]
    assert {kind for _, kind, _ in forms} == {"application/x-www-form-urlencoded"}
    assert {kind for _, kind, _ in documents} == {"application/json"}
    for (name, _, form), (same, _, document) in zip(forms, documents, strict=True):
        assert same == name
        assert document == decoded_form(form)
    # Nested objects are objects, the bot's default parse mode is applied, and unset
    # parameters are left out as the form leaves them out.
    first, second = documents[0][2], documents[1][2]
    assert first["reply_markup"]["keyboard"] == [[{"text": "Report"}], [{"text": "Rate"}]]
    assert first["parse_mode"] == "HTML"
    assert first["text"] == "Bonjour <b>&amp;</b> ✓"
    assert second["disable_notification"] is False
    assert "message_thread_id" not in second


async def test_answers_are_read_as_aiogram_reads_them(api: tuple[Recorder, str]) -> None:
    recorder, base = api
    bot = bot_on(JsonSession(api=TelegramAPIServer.from_base(base)))
    try:
        sent = await bot.send_message(chat_id=7, text="hi")
        assert sent.message_id == 99
        assert sent.bot is bot  # bound, as aiogram binds what it parses
        assert await bot.answer_callback_query("q1") is True
        recorder.refuse = True
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(chat_id=7, text="hi")
    finally:
        await bot.session.close()


async def test_a_file_goes_as_aiogram_s_multipart_form(api: tuple[Recorder, str]) -> None:
    recorder, base = api
    bot = bot_on(JsonSession(api=TelegramAPIServer.from_base(base)))
    try:
        document = BufferedInputFile(b"a,b\n1,2\n", filename="export.csv")
        await bot(SendDocument(chat_id=7, document=document, caption="Export"))
    finally:
        await bot.session.close()
    (name, kind, params) = recorder.calls[0]
    assert (name, kind) == ("sendDocument", "multipart/form-data")
    assert params["caption"] == "Export"
    attached = params["document"]
    assert attached.startswith("attach://")
    assert params[attached.removeprefix("attach://")] == ("file", "export.csv")


async def test_a_request_that_cannot_be_made_is_aiogram_s_network_error() -> None:
    bot = bot_on(JsonSession(api=TelegramAPIServer.from_base("http://127.0.0.1:9")))
    try:
        with pytest.raises(TelegramNetworkError):
            await bot.send_message(chat_id=7, text="hi")
    finally:
        await bot.session.close()


async def test_a_result_nobody_reads_is_not_built(
    api: tuple[Recorder, str], caplog: pytest.LogCaptureFixture
) -> None:
    """Replies sent after the commit: Telegram's answer is read for errors only."""
    recorder, base = api
    bot = bot_on(JsonSession(api=TelegramAPIServer.from_base(base)))
    try:
        recorder.odd = True
        with pytest.raises(ClientDecodeError):  # read in full, it fails
            await bot.send_message(chat_id=7, text="hi")
        with result_unread():
            assert await bot.send_message(chat_id=7, text="hi") is None
        out = Outgoing()
        out.add(SendMessage(chat_id=7, text="reply"))
        with caplog.at_level(logging.WARNING):
            await out.flush(bot)  # does not read it: nothing failed
        assert not caplog.records
        recorder.odd = False
        with result_unread():
            recorder.refuse = True
            with pytest.raises(TelegramBadRequest, match="chat not found"):
                await bot.send_message(chat_id=7, text="hi")
        recorder.refuse = False
        assert (await bot.send_message(chat_id=7, text="hi")).message_id == 99
    finally:
        await bot.session.close()
