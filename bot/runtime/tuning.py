"""Two costs aiogram adds to every update, removed once at start-up.

* aiogram runs a synchronous filter in a worker thread (``asyncio.to_thread``), so
  each ``F.…`` magic filter on the way to a handler costs two thread switches. A
  magic filter only reads attributes of the event: it runs inline here instead.
* aiogram parses every Bot API answer with ``Response[T]``; pydantic keeps such
  parametrised models only weakly, so after a garbage collection the next call builds
  the model class again (about 10 ms each). A request middleware keeps them alive,
  and builds those of the usual methods at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aiogram import Bot, Router
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.handler import FilterObject
from aiogram.filters.logic import _LogicFilter
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    Response,
    SendDocument,
    SendLocation,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType


def _routers(router: Router) -> Iterator[Router]:
    yield router
    for child in router.sub_routers:
        yield from _routers(child)


def _inline(function: Callable[..., Any]) -> Callable[..., Any]:
    async def inline(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return inline


def _filters(found: FilterObject) -> Iterator[FilterObject]:
    """A filter and those it combines (``or_f``, ``and_f``, ``invert_f``, ``~``)."""
    yield found
    combined = found.callback
    if isinstance(combined, _LogicFilter):
        inner = getattr(combined, "targets", None) or (getattr(combined, "target", None),)
        for each in inner:
            if isinstance(each, FilterObject):
                yield from _filters(each)


def run_magic_filters_inline(router: Router) -> int:
    """Make the magic filters of ``router`` and its sub-routers run on the event loop.

    Returns how many were changed (none the second time).
    """
    changed = 0
    for each in _routers(router):
        for observer in each.observers.values():
            # ``_handler`` holds the filters set with ``observer.filter(...)``.
            for handler in (observer._handler, *observer.handlers):
                for top in handler.filters or ():
                    for found in _filters(top):
                        if found.magic is not None and not found.awaitable:
                            found.callback = _inline(found.callback)
                            found.awaitable = True
                            changed += 1
    return changed


# The Bot API methods the bot calls in handling updates: their models (deferred by
# bot.runtime.lean_aiogram) are built at start-up, not during a citizen's first update.
COMMON_METHODS: tuple[type[TelegramMethod[Any]], ...] = (
    SendMessage,
    EditMessageText,
    EditMessageReplyMarkup,
    AnswerCallbackQuery,
    SendPhoto,
    SendDocument,
    SendLocation,
    GetFile,
)


class KeepResponseModels(BaseRequestMiddleware):
    """Holds a strong reference to ``Response[T]`` for every method type the bot calls."""

    def __init__(self, common: tuple[type[TelegramMethod[Any]], ...] = COMMON_METHODS) -> None:
        self._models: dict[type[TelegramMethod[Any]], Any] = {}
        for kind in common:
            kind.model_rebuild()
            self._models[kind] = Response[kind.__returning__]  # type: ignore[name-defined]

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        """Pin the method's response model, then make the request."""
        kind = type(method)
        if kind not in self._models:
            self._models[kind] = Response[method.__returning__]  # type: ignore[name-defined]
        return await make_request(bot, method)


def keep_response_models(bot: Bot) -> None:
    """Install :class:`KeepResponseModels` on the bot's session (once)."""
    middlewares = bot.session.middleware
    if not any(isinstance(each, KeepResponseModels) for each in middlewares):
        middlewares(KeepResponseModels())
