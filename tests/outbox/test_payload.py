"""Bot API calls stored in the outbox come back as the same calls."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiogram.methods import DeleteMyCommands, SendMessage, SendPhoto, SetMyCommands, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeChatAdministrators,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
)

from bot.outbox import method_from_payload, method_payload
from storage.jsoncodec import dumps


@pytest.mark.parametrize(
    "method",
    [
        # A scope is a union told apart by its "type" alone, which has a default.
        SetMyCommands(
            commands=[BotCommand(command="reports", description="Reports")],
            scope=BotCommandScopeChat(chat_id=42),
        ),
        DeleteMyCommands(scope=BotCommandScopeChatAdministrators(chat_id=-100)),
        SendMessage(
            chat_id=42,
            text="<b>Hi</b>",
            reply_parameters=ReplyParameters(message_id=7),
            reply_markup=InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="Yes", callback_data="y")]]
            ),
        ),
        SendPhoto(chat_id=42, photo=BufferedInputFile(b"\x89PNG", filename="chart.png")),
    ],
    ids=lambda method: type(method).__name__,
)
def test_a_stored_call_is_rebuilt_as_it_was(method: TelegramMethod[Any]) -> None:
    name, payload = method_payload(method)
    stored = json.loads(dumps(payload))  # as the database's JSON column keeps it
    rebuilt = method_from_payload(name, stored)
    assert type(rebuilt) is type(method)
    assert method_payload(rebuilt) == (name, payload)
    scope = getattr(method, "scope", None)
    if scope is not None:
        assert type(getattr(rebuilt, "scope", None)) is type(scope)
