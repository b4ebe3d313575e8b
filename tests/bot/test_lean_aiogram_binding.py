"""aiogram objects are bound to the bot by one function, with pydantic's result."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from aiogram import Bot
from aiogram.client.context_controller import BotContextController
from aiogram.methods import SendMessage
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from pydantic import BaseModel

from bot.runtime.lean_aiogram import _bind_bot, _subclasses

USER = {"id": 5, "is_bot": False, "first_name": "A", "language_code": "en"}
CHAT = {"id": 5, "type": "private", "first_name": "A"}
KEYBOARD = {"inline_keyboard": [[{"text": "a", "callback_data": f"d:1:o{i}"}] for i in range(3)]}
DOCUMENTS: list[dict[str, Any]] = [
    {
        "update_id": 1,
        "message": {"message_id": 1, "date": 0, "chat": CHAT, "from": USER, "text": "hi"},
    },
    {
        "update_id": 2,
        "callback_query": {
            "id": "1",
            "from": USER,
            "chat_instance": "x",
            "data": "d:1:o0",
            "message": {
                "message_id": 2,
                "date": 0,
                "chat": CHAT,
                "from": {"id": 42, "is_bot": True, "first_name": "bot"},
                "text": "q",
                "reply_markup": KEYBOARD,
            },
        },
    },
]


def _objects(value: Any) -> Iterator[BaseModel]:
    """Every aiogram object inside ``value``, itself included."""
    if isinstance(value, BaseModel):
        yield value
        for name in type(value).model_fields:
            yield from _objects(getattr(value, name))
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _objects(item)


def test_every_aiogram_model_binds_the_bot_directly() -> None:
    for model in (Update, Message, InlineKeyboardButton, SendMessage):
        assert model.model_post_init is _bind_bot
    models = [BotContextController, *_subclasses(BotContextController)]
    assert len(models) > 500
    # Subclasses made since (generic parametrisations in tests) wrap it, as pydantic does.
    assert [m for m in models if inspect.unwrap(m.model_post_init) is not _bind_bot] == []


async def test_parsed_and_built_objects_are_bound_as_pydantic_would_bind_them() -> None:
    bot, other = Bot("42:TEST"), Bot("43:TEST")
    try:
        for document in DOCUMENTS:
            bound = Update.model_validate(document, context={"bot": bot})
            loose = Update.model_validate(document)
            assert bound.model_dump() == loose.model_dump()
            assert bound.model_dump(by_alias=True, exclude_none=True) == document
            for item in _objects(bound):
                assert item.__pydantic_private__ == {"_bot": bot}, type(item)
            for item in _objects(loose):
                assert item.__pydantic_private__ == {"_bot": None}, type(item)
            copied = bound.model_copy()
            assert copied.bot is bot
            assert copied.as_(other).bot is other and bound.bot is bot

        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="b")]]
        )
        method = SendMessage(chat_id=5, text="x", reply_markup=markup)
        assert method.__pydantic_private__ == {"_bot": None}
        assert markup.inline_keyboard[0][0].__pydantic_private__ == {"_bot": None}
        assert SendMessage.model_construct(chat_id=5, text="x").__pydantic_private__ == {
            "_bot": None
        }
        message = Message.model_validate(DOCUMENTS[0]["message"], context={"bot": bot})
        assert message.answer("y").bot is bot
    finally:
        await bot.session.close()
        await other.session.close()
