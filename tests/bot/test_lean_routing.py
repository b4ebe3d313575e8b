"""LeanRouter routes exactly as aiogram's Router does; compiled magic filters agree with
magic_filter; the bot's feature routers are lean."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.dispatcher.event.bases import REJECTED, SkipHandler
from aiogram.dispatcher.event.handler import HandlerObject
from aiogram.filters import (
    Command,
    CommandStart,
    ExceptionTypeFilter,
    Filter,
    and_f,
    invert_f,
    or_f,
)
from aiogram.types import CallbackQuery, Message, TelegramObject, Update
from magic_filter import MagicFilter

from bot.handlers import include_routers
from bot.runtime.tuning import (
    LeanDispatcher,
    LeanRouter,
    compile_magic,
    run_magic_filters_inline,
)

STAFF_ID, CITIZEN_ID = 1, 2
BOT_USER = {"id": 4242, "is_bot": True, "first_name": "bot"}


class NeedsStaff(Filter):
    """A filter that adds to the context (as RequireRole does)."""

    async def __call__(self, event: TelegramObject, event_from_user: Any) -> Any:
        return {"roles": "staff"} if event_from_user.id == STAFF_ID else False


def _private(message: Message) -> bool:
    # A synchronous filter: aiogram runs it in a worker thread.
    return message.chat.type == "private"


Log = list[tuple[str, dict[str, Any]]]


def _plain(value: Any) -> Any:
    if isinstance(value, Dispatcher):
        return "dispatcher"
    if isinstance(value, Router):
        return ("router", value.name)
    if isinstance(value, HandlerObject):
        return ("handler", value.callback.__name__)
    return value


def _handler(log: Log, name: str, result: Any = None) -> Callable[..., Awaitable[Any]]:
    async def handler(event: TelegramObject, **data: Any) -> Any:
        log.append((name, {key: _plain(value) for key, value in data.items()}))
        if result is SkipHandler:
            raise SkipHandler
        return name if result is None else result

    handler.__name__ = name
    return handler


def _tree(kind: type[Router], root: type[Dispatcher] = Dispatcher) -> tuple[Dispatcher, Log]:
    """Routers exercising what aiogram's walk does: root filters that add to the
    context, logic filters, synchronous filters, SkipHandler, REJECTED, inner and outer
    middlewares, nesting."""
    log: Log = []
    first = kind(name="first")
    first.message.filter(
        F.chat.type == "private",
        or_f(Command("a", "b"), F.reply_to_message.from_user.is_bot),
        NeedsStaff(),
    )
    first.message.register(_handler(log, "first_a"), Command("a"))
    first.message.register(_handler(log, "first_reply"), F.reply_to_message)
    first.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith("f:"), NeedsStaff()
    )
    first.callback_query.register(_handler(log, "first_skip", SkipHandler), F.data == "f:skip")
    first.callback_query.register(_handler(log, "first_button"))

    second = kind(name="second")
    second.message.filter(_private)

    async def boom(message: Message) -> None:
        raise ValueError(message.text)

    second.message.register(boom, F.text == "boom")
    second.message.register(_handler(log, "second_start"), CommandStart())
    second.message.register(
        _handler(log, "second_x"), and_f(F.text.startswith("x"), F.text.as_("word"))
    )
    second.message.register(_handler(log, "second_rejected", REJECTED), F.text == "reject")
    second.message.register(_handler(log, "second_long"), invert_f(Command("c")), F.text.len() > 40)
    second.message.register(_handler(log, "second_caption"), ~F.text, F.caption)

    child = kind(name="child")

    async def inner(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["inner"] = data.get("inner", 0) + 1
        return await handler(event, data)

    async def sees(event: TelegramObject, **data: Any) -> bool:
        # A root filter sees the context the walk built, nothing a sibling or parent
        # handler's filters added.
        log.append(("child_filter", {key: _plain(value) for key, value in data.items()}))
        return True

    child.message.filter(sees)
    child.message.middleware(inner)
    child.message.register(_handler(log, "child_c"), Command("c", prefix="/!"))
    child.message.register(_handler(log, "child_skip", SkipHandler), F.text == "skip")
    child.message.register(_handler(log, "child_after_skip"), F.text.in_({"skip", "other"}))

    other = kind(name="other")

    async def outer(
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        data["outer"] = True
        return await handler(event, data)

    other.message.outer_middleware(outer)
    other.message.register(_handler(log, "other_hello"), F.text == "hello")
    second.include_routers(child, other)

    last = kind(name="last")
    last.message.register(_handler(log, "last_message"))
    last.callback_query.register(_handler(log, "last_button"))
    # A failing handler's error travels the routers as an "error" event.
    last.error.register(_handler(log, "last_error"), ExceptionTypeFilter(ValueError))

    dispatcher = root(disable_fsm=True)
    dispatcher.include_routers(first, second, last)
    run_magic_filters_inline(dispatcher)
    return dispatcher, log


def _message(user: int, chat_type: str = "private", **content: Any) -> dict[str, Any]:
    return {
        "message_id": 7,
        "date": 0,
        "chat": {"id": user, "type": chat_type},
        "from": {"id": user, "is_bot": False, "first_name": "P"},
        **content,
    }


def _updates() -> list[dict[str, Any]]:
    texts = [
        "/a",
        "/b some args",
        "  /a",
        "\n/c",
        "!c",
        "/c",
        "/start",
        "/start deep",
        "/",
        "   ",
        "x-ray",
        "reject",
        "skip",
        "other",
        "hello",
        "boom",
        "a long message that goes on and on and on, past forty characters",
    ]
    contents: list[dict[str, Any]] = [{"text": text} for text in texts]
    contents += [
        {
            "caption": "/a",
            "photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
        },
        {
            "caption": "a photo",
            "photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}],
        },
        {"location": {"latitude": 1.0, "longitude": 2.0}},
        {"text": "hi", "reply_to_message": _message(BOT_USER["id"], text="q") | {"from": BOT_USER}},
    ]
    updates: list[dict[str, Any]] = []
    ids = itertools.count(1)
    for user, chat_type, content in itertools.product(
        (STAFF_ID, CITIZEN_ID), ("private", "group"), contents
    ):
        message = _message(user, chat_type, **content)
        if chat_type == "group":
            message["chat"] = {"id": -5, "type": "group", "title": "g"}
        updates.append({"update_id": next(ids), "message": message})
    for user, data in itertools.product((STAFF_ID, CITIZEN_ID), ("f:1", "f:skip", "g:1", None)):
        query: dict[str, Any] = {
            "id": str(next(ids)),
            "chat_instance": "c",
            "from": {"id": user, "is_bot": False, "first_name": "P"},
            "message": _message(user, text="q") | {"from": BOT_USER},
        }
        if data is not None:
            query["data"] = data
        updates.append({"update_id": next(ids), "callback_query": query})
    return updates


@pytest.mark.parametrize("root", [Dispatcher, LeanDispatcher])
async def test_a_lean_router_routes_as_aiograms_router_does(root: type[Dispatcher]) -> None:
    bot = Bot("42:TEST")
    plain, plain_log = _tree(Router)
    lean, lean_log = _tree(LeanRouter, root)
    try:
        for document in _updates():
            update = Update.model_validate(document, context={"bot": bot})
            expected = await plain.feed_update(bot, update, extra="context")
            found = await lean.feed_update(bot, update, extra="context")
            assert found == expected, document
            assert lean_log == plain_log, document
    finally:
        await bot.session.close()
    handled = {name for name, _ in plain_log}
    # The updates reach every kind of handler in the tree.
    assert handled >= {
        "first_a",
        "first_reply",
        "first_skip",
        "first_button",
        "second_start",
        "second_x",
        "second_rejected",
        "second_long",
        "second_caption",
        "child_c",
        "child_skip",
        "child_after_skip",
        "other_hello",
        "last_message",
        "last_button",
        "last_error",
    }


def test_the_bots_routers_are_lean() -> None:
    dispatcher = Dispatcher()
    include_routers(dispatcher)
    assert all(isinstance(router, LeanRouter) for router in dispatcher.sub_routers)


MAGIC: list[MagicFilter] = [
    F.chat.type == "private",
    F.message.chat.type == "private",
    F.data.startswith("f:"),
    F.data.startswith(("f:", "g:")),
    F.reply_to_message.from_user.is_bot,
    F.reply_to_message.reply_markup,
    F.document.file_name.lower().endswith((".yaml", ".yml")),
    F.text != "x",
    F.text,
    F.text.upper().isupper(),  # a call on what a call returned
    F.from_user.id == STAFF_ID,
]


def _events() -> list[TelegramObject]:
    bot_message = _message(BOT_USER["id"], text="q") | {"from": BOT_USER}
    document = {"file_id": "d", "file_unique_id": "u", "file_name": "Flow.YAML"}
    messages = [
        _message(STAFF_ID, text="x"),
        _message(CITIZEN_ID, "group", text="hello") | {"chat": {"id": -1, "type": "group"}},
        _message(STAFF_ID, document=document),
        _message(STAFF_ID, document={"file_id": "d", "file_unique_id": "u"}),
        _message(STAFF_ID, text="hi", reply_to_message=bot_message),
    ]
    events: list[TelegramObject] = [Message.model_validate(each) for each in messages]
    events += [
        CallbackQuery.model_validate(
            {
                "id": "1",
                "chat_instance": "c",
                "from": {"id": CITIZEN_ID, "is_bot": False, "first_name": "P"},
                "message": bot_message,
                **({"data": data} if data else {}),
            }
        )
        for data in ("f:1", "g:2", "h", None)
    ]
    return events


@pytest.mark.parametrize("magic", MAGIC, ids=range(len(MAGIC)))
def test_a_compiled_magic_filter_agrees_with_magic_filter(magic: MagicFilter) -> None:
    compiled = compile_magic(magic)
    assert compiled is not None
    for event in _events():
        assert compiled(event) == magic.resolve(event), event


@pytest.mark.parametrize(
    "magic",
    [
        F.text.len() > 3,
        F.text.in_({"a"}),
        ~F.text,
        F.photo[-1],
        F.text == F.caption,
        F.text.as_("t"),
    ],
    ids=range(6),
)
def test_other_magic_filters_are_left_to_magic_filter(magic: MagicFilter) -> None:
    assert compile_magic(magic) is None
