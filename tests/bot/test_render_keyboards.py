"""Keyboards are built once per content and shared by the messages that show them."""

from __future__ import annotations

from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup

from bot.conversation.render import render
from dialogs import InlineButton, OutMessage, ReplyButton

CATEGORIES = OutMessage(
    "Which problem?",
    inline=(
        (InlineButton("Pothole", "d:3:0"),),
        (InlineButton("Litter", "d:3:1"),),
        (InlineButton("⬅️ Back", "d:3:b"), InlineButton("✖️ Cancel", "d:3:c")),
    ),
)
LOCATION = OutMessage(
    "Where?",
    reply_keyboard=((ReplyButton("📍 Send my location", request_location=True),),),
    one_time=True,
)


def markup(message: OutMessage, chat_id: int) -> object:
    (method,) = render([message], chat_id=chat_id)
    assert isinstance(method, SendMessage)
    return method.reply_markup


def test_two_citizens_at_one_step_share_one_keyboard() -> None:
    first, second = markup(CATEGORIES, 1), markup(CATEGORIES, 2)
    assert first is second
    assert isinstance(first, InlineKeyboardMarkup)
    assert [[(b.text, b.callback_data) for b in row] for row in first.inline_keyboard] == [
        [("Pothole", "d:3:0")],
        [("Litter", "d:3:1")],
        [("⬅️ Back", "d:3:b"), ("✖️ Cancel", "d:3:c")],
    ]


def test_other_buttons_get_their_own_keyboard() -> None:
    other = OutMessage(CATEGORIES.text, inline=((InlineButton("Pothole", "d:4:0"),),))
    kept = markup(CATEGORIES, 1)
    changed = markup(other, 1)
    assert changed is not kept
    assert isinstance(changed, InlineKeyboardMarkup)
    assert changed.inline_keyboard[0][0].callback_data == "d:4:0"


def test_reply_keyboards_keep_their_options() -> None:
    once = markup(LOCATION, 1)
    assert isinstance(once, ReplyKeyboardMarkup)
    assert once.one_time_keyboard is True and once.resize_keyboard is True
    assert once.keyboard[0][0].request_location is True
    again = OutMessage(LOCATION.text, reply_keyboard=LOCATION.reply_keyboard, one_time=False)
    kept = markup(again, 1)
    assert isinstance(kept, ReplyKeyboardMarkup) and kept.one_time_keyboard is None
