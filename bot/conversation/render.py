"""Turning the engine's messages into Bot API calls.

Keyboards are built once per content and reused (read-only): aiogram's models cost
about 5 us a button to build, and every citizen at a step sees the same buttons.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aiogram.methods import EditMessageText, SendMessage, TelegramMethod
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
)

from dialogs import InlineButton, OutMessage, ReplyButton

Markup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove


KEYBOARDS_KEPT = 1024


@lru_cache(maxsize=KEYBOARDS_KEPT)
def _inline(rows: tuple[tuple[InlineButton, ...], ...]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [InlineKeyboardButton(text=b.text, callback_data=b.data) for b in row] for row in rows
        ]
    )


@lru_cache(maxsize=KEYBOARDS_KEPT)
def _reply(rows: tuple[tuple[ReplyButton, ...], ...], one_time: bool) -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=b.text, request_location=b.request_location or None) for b in row]
            for row in rows
        ],
        resize_keyboard=True,
        one_time_keyboard=one_time or None,
    )


@lru_cache(maxsize=1)
def _remove() -> ReplyKeyboardRemove:
    return ReplyKeyboardRemove()


def markup_of(message: OutMessage) -> Markup | None:
    """The keyboard a message carries, if any (shared: do not change it)."""
    if message.inline:
        return _inline(message.inline)
    if message.reply_keyboard:
        return _reply(message.reply_keyboard, message.one_time)
    if message.remove_keyboard:
        return _remove()
    return None


def render(
    messages: list[OutMessage],
    *,
    chat_id: int,
    pressed_message_id: int | None = None,
    closing: tuple[Markup, str] | None = None,
) -> list[TelegramMethod[Any]]:
    """Bot API calls for the engine's messages, in order.

    ``edit_previous`` messages edit the message whose button was pressed (inline
    markup only, as Telegram allows). ``closing`` (the main menu and a line to carry
    it, when a flow ends) goes on the last message if that one has no keyboard of its
    own, else on a message of its own after it.
    """
    closing_markup = closing[0] if closing else None
    methods: list[TelegramMethod[Any]] = []
    for index, message in enumerate(messages):
        markup = markup_of(message)
        last = index == len(messages) - 1
        if last and markup is None and closing_markup is not None:
            markup, closing_markup = closing_markup, None
        if message.edit_previous and pressed_message_id is not None and not message.reply_keyboard:
            inline = markup if isinstance(markup, InlineKeyboardMarkup) else None
            methods.append(
                EditMessageText(
                    chat_id=chat_id,
                    message_id=pressed_message_id,
                    text=message.text,
                    reply_markup=inline,
                )
            )
            continue
        methods.append(SendMessage(chat_id=chat_id, text=message.text, reply_markup=markup))
    if closing is not None and closing_markup is not None:
        methods.append(SendMessage(chat_id=chat_id, text=closing[1], reply_markup=closing_markup))
    return methods
