"""Costs aiogram adds to every update, removed once at start-up.

* aiogram runs a synchronous filter in a worker thread (``asyncio.to_thread``), so
  each ``F.…`` magic filter on the way to a handler costs two thread switches. A
  magic filter only reads attributes of the event: it runs inline here instead, as a
  plain function where its operations allow (:func:`compile_magic`).
* aiogram parses every Bot API answer with ``Response[T]``; pydantic keeps such
  parametrised models only weakly, so after a garbage collection the next call builds
  the model class again (about 10 ms each). A request middleware keeps them alive,
  and builds those of the usual methods at start-up.
* aiogram's router walk copies the context dictionary half a dozen times per router
  and wraps the (absent) middlewares with ``functools.partial``/``update_wrapper``
  at each level; a citizen's answer passes a dozen routers before the dialog's.
  :class:`LeanRouter` walks them with the same rules, and the same results, without
  that glue; where middlewares are registered it takes aiogram's own path.
* aiogram posts every Bot API call as a form, each nested object JSON-encoded and
  then URL-encoded, through aiohttp's ``FormData``: about 150 µs for a message with a
  keyboard. The Bot API also takes a call as one JSON document ("application/json,
  except for uploading files", in its documentation's list of encodings);
  :class:`JsonSession` sends that when there is no file to upload, in about half the
  time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from operator import attrgetter
from typing import Any, cast

from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.event.bases import REJECTED, UNHANDLED, SkipHandler
from aiogram.dispatcher.event.handler import CallableObject, FilterObject
from aiogram.dispatcher.event.telegram import TelegramEventObserver
from aiogram.exceptions import TelegramNetworkError
from aiogram.filters import Command, CommandStart
from aiogram.filters.logic import _AndFilter, _InvertFilter, _LogicFilter, _OrFilter
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
from aiogram.types import Message, TelegramObject
from aiohttp import ClientError, ClientTimeout
from magic_filter import MagicFilter as OriginalMagicFilter
from magic_filter.operations import CallOperation, ComparatorOperation, GetAttributeOperation

from storage import jsoncodec


def _routers(router: Router) -> Iterator[Router]:
    yield router
    for child in router.sub_routers:
        yield from _routers(child)


_ATTRIBUTES, _COMPARE, _CALL = range(3)


def compile_magic(magic: OriginalMagicFilter) -> Callable[[Any], Any] | None:
    """A plain function that returns what ``magic.resolve(value)`` returns, several times
    faster; None for a filter with other operations than attribute reads, comparisons
    with a constant and calls (``F.chat.type == "private"``, ``F.data.startswith(...)``).

    Those operations are not "important" in magic_filter's sense: once one is rejected
    (a missing attribute, calling what cannot be called), the rest are skipped and the
    result is None.
    """
    steps: list[tuple[int, Any, Any]] = []
    names: list[str] = []

    def read_names() -> None:
        if names:
            steps.append((_ATTRIBUTES, attrgetter(".".join(names)), None))
            names.clear()

    operations: tuple[Any, ...] = magic._operations
    for operation in operations:
        kind = type(operation)
        if kind is GetAttributeOperation and "." not in operation.name:
            names.append(operation.name)
            continue
        read_names()
        if kind is ComparatorOperation and not isinstance(operation.right, OriginalMagicFilter):
            steps.append((_COMPARE, operation.comparator, operation.right))
        elif kind is CallOperation:
            steps.append((_CALL, operation.args, operation.kwargs))
        else:
            return None
    read_names()

    def resolve(value: Any) -> Any:
        for step, first, second in steps:
            if step == _ATTRIBUTES:
                try:
                    value = first(value)
                except AttributeError:
                    return None
            elif step == _COMPARE:
                value = first(value, second)
            else:
                if not callable(value):
                    return None
                value = value(*first, **second)
        return value

    return resolve


class _InlineMagic:
    """A magic filter's callback that aiogram awaits, and that routers call directly."""

    __slots__ = ("resolve",)

    def __init__(self, resolve: Callable[[Any], Any]) -> None:
        self.resolve = resolve

    async def __call__(self, value: Any) -> Any:
        return self.resolve(value)


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
                            resolve = compile_magic(found.magic) or found.magic.resolve
                            found.callback = _InlineMagic(resolve)
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


# Response[T] of each method type called in this process, kept for its lifetime.
_RESPONSE_MODELS: dict[type[TelegramMethod[Any]], Any] = {}


def _pin_response_model(kind: type[TelegramMethod[Any]]) -> Any:
    model = _RESPONSE_MODELS.get(kind)
    if model is None:
        model = _RESPONSE_MODELS[kind] = Response[kind.__returning__]  # type: ignore[name-defined]
    return model


class KeepResponseModels(BaseRequestMiddleware):
    """Holds a strong reference to ``Response[T]`` for every method type the bot calls.

    Those of the usual methods are built when it is made, at start-up: built on first
    use, as aiogram's deferred models are (see :mod:`bot.runtime.lean_aiogram`), the
    first reply's answer took 110 ms to read and the first edit's as long again, so
    the first citizens after a start waited behind them.
    """

    def __init__(self, common: tuple[type[TelegramMethod[Any]], ...] = COMMON_METHODS) -> None:
        for kind in common:
            kind.model_rebuild()
            _pin_response_model(kind).model_rebuild()

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        """Pin the method's response model, then make the request."""
        kind = type(method)
        if kind not in _RESPONSE_MODELS:
            _pin_response_model(kind)
        return await make_request(bot, method)


def keep_response_models(bot: Bot) -> None:
    """Install :class:`KeepResponseModels` on the bot's session (once)."""
    middlewares = bot.session.middleware
    if not any(isinstance(each, KeepResponseModels) for each in middlewares):
        middlewares(KeepResponseModels())


# --- routing without the glue -----------------------------------------------------------


def _may_be_command(command: Command, event: TelegramObject) -> bool:
    """False when ``command`` cannot match: what ``Command.__call__`` checks before it
    parses (a message with text or a caption whose first word starts with a prefix)."""
    if not isinstance(event, Message):
        return False
    text = (event.text or event.caption or "").lstrip()
    return bool(text) and text[0] in command.prefix


async def _call(found: CallableObject, event: TelegramObject, data: dict[str, Any]) -> Any:
    """``found.call(event, **data)`` without the ``partial`` and the copies."""
    if found.awaitable:
        return await found.callback(event, **found._prepare_kwargs(data))
    return await found.call(event, **data)


async def _result(found: FilterObject, event: TelegramObject, data: dict[str, Any]) -> Any:
    """What aiogram's ``found.call(event, **data)`` returns, for less."""
    callback: Any = found.callback
    if found.magic is not None:
        # A magic filter reads attributes of the event, nothing else.
        if type(callback) is _InlineMagic:
            return callback.resolve(event)
        return found.magic.resolve(event)
    kind = type(callback)
    if kind is Command or kind is CommandStart:
        if not _may_be_command(callback, event):
            return False
    elif kind is _OrFilter:
        for target in callback.targets:
            result = await _result(target, event, data)
            if result:
                return result if isinstance(result, dict) else bool(result)
        return False
    elif kind is _AndFilter:
        final: dict[str, Any] = {}
        for target in callback.targets:
            result = await _result(target, event, data)
            if not result:
                return False
            if isinstance(result, dict):
                final.update(result)
        return final or True
    elif kind is _InvertFilter:
        return not bool(await _result(callback.target, event, data))
    return await _call(found, event, data)


async def _check(
    filters: list[FilterObject] | None, event: TelegramObject, data: dict[str, Any]
) -> dict[str, Any] | None:
    """aiogram's ``HandlerObject.check``: None when a filter fails, else the context
    with what the filters added (``data`` itself when they added nothing; ``data`` is
    never changed)."""
    passed = data
    for found in filters or ():
        result = await _result(found, event, passed)
        if not result:
            return None
        if isinstance(result, dict):
            if passed is data:
                passed = dict(data)
            passed.update(result)
    return passed


async def _trigger(
    observer: TelegramEventObserver, event: TelegramObject, kwargs: dict[str, Any]
) -> Any:
    """aiogram's ``TelegramEventObserver.trigger``: the first handler whose filters pass."""
    if not observer.handlers:
        return UNHANDLED
    data = dict(kwargs)
    for handler in observer.handlers:
        data["handler"] = handler
        passed = await _check(handler.filters, event, data)
        if passed is None:
            continue
        if passed is not data:
            data.update(passed)
        try:
            middlewares = observer._resolve_middlewares()
            if middlewares:
                wrapped = observer.outer_middleware.wrap_middlewares(middlewares, handler.call)
                return await wrapped(event, data)
            return await _call(handler, event, data)
        except SkipHandler:
            continue
    return UNHANDLED


class LeanRouter(Router):
    """A router that walks its handlers and sub-routers as aiogram's does, minus the glue.

    Same order, same filters, same context for filters and handlers; an observer with
    outer middlewares, or a handler with inner ones, goes through aiogram's own code.
    """

    async def propagate_event(self, update_type: str, event: TelegramObject, **kwargs: Any) -> Any:
        """Offer the event to this router's handlers, then to its sub-routers in order."""
        kwargs["event_router"] = self
        observer = self.observers.get(update_type)
        if observer is not None:
            if len(observer.outer_middleware):
                return await super().propagate_event(update_type, event, **kwargs)
            passed = await _check(observer._handler.filters, event, kwargs)
            if passed is None:
                return UNHANDLED
            kwargs = passed
            response = await _trigger(observer, event, kwargs)
            if response is REJECTED:
                return UNHANDLED
            if response is not UNHANDLED:
                return response
        response = UNHANDLED
        for router in self.sub_routers:
            response = await router.propagate_event(update_type=update_type, event=event, **kwargs)
            if response is not UNHANDLED:
                break
        return response


class LeanDispatcher(LeanRouter, Dispatcher):
    """aiogram's dispatcher, walking its routers as :class:`LeanRouter` does."""


# --- requests as JSON ---------------------------------------------------------------------

_JSON_HEADERS = {"Content-Type": "application/json"}


class JsonSession(AiohttpSession):
    """aiogram's aiohttp session, posting a call as one JSON document unless it
    uploads a file (then as aiogram's form, unchanged).

    The values are aiogram's own (``prepare_value``: bot defaults such as the parse
    mode, dates, enums), and the parameters aiogram's form leaves out (unset ones and
    empty strings) are left out here too; nested objects stay objects instead of
    strings. Answers, errors and timeouts are read as aiogram reads them. JSON is
    written and read with orjson (:mod:`storage.jsoncodec`).
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("json_dumps", jsoncodec.dumps)
        kwargs.setdefault("json_loads", jsoncodec.loads_bot_api)
        super().__init__(**kwargs)

    def _plain(self, value: Any, bot: Bot, files: dict[str, Any]) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or kind is float:
            return value
        if kind is dict:
            return {
                key: item
                for key, each in value.items()
                if (item := self._plain(each, bot, files)) is not None
            }
        if kind is list:
            return [item for each in value if (item := self._plain(each, bot, files)) is not None]
        return self.prepare_value(value, bot=bot, files=files, _dumps_json=False)

    def json_payload(self, bot: Bot, method: TelegramMethod[Any]) -> dict[str, Any] | None:
        """The call's parameters as the JSON document's object; None when it uploads a
        file (it goes as a form then)."""
        files: dict[str, Any] = {}
        payload = {}
        # Unset fields (None, most of a method's) are left out by pydantic, which is
        # faster than walking past them here; the form leaves them out too.
        for key, value in method.model_dump(warnings=False, exclude_none=True).items():
            plain = self._plain(value, bot, files)
            if plain is not None and plain != "":  # what the form leaves out
                payload[key] = plain
        return None if files else payload

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        """Send ``method``; its result, as ``AiohttpSession.make_request`` returns it."""
        payload = self.json_payload(bot, method)
        if payload is None:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            async with session.post(
                url,
                data=self.json_dumps(payload),
                headers=_JSON_HEADERS,
                timeout=ClientTimeout(total=self.timeout if timeout is None else timeout),
            ) as response:
                raw = await response.text()
        except TimeoutError as error:
            raise TelegramNetworkError(method=method, message="Request timeout error") from error
        except ClientError as error:
            message = f"{type(error).__name__}: {error}"
            raise TelegramNetworkError(method=method, message=message) from error
        return cast(TelegramType, self.read_answer(bot, method, response.status, raw))

    def read_answer(
        self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str
    ) -> Any:
        """The result of a call, from the Bot API's answer, as aiogram reads it; None for
        a successful call whose result nobody reads (see :func:`result_unread`).
        Errors are raised as aiogram raises them either way."""
        if _RESULT_UNREAD.get() and status_code == 200:
            try:
                answer = self.json_loads(content)
            except ValueError:
                answer = None
            if isinstance(answer, dict) and answer.get("ok") is True:
                return None
        return self.check_response(
            bot=bot, method=method, status_code=status_code, content=content
        ).result


# Set while the caller will not read the results of its calls (see result_unread).
_RESULT_UNREAD: ContextVar[bool] = ContextVar("citizenbot_result_unread", default=False)


@contextmanager
def result_unread() -> Iterator[None]:
    """Within it, the JSON session does not build the result of a successful call (a
    sent message, with its chat, sender and keyboard: aiogram's pydantic models cost
    more than the rest of the call): the caller does not read it. Errors are read and
    raised as always; a file upload (a form) is read in full."""
    token = _RESULT_UNREAD.set(True)
    try:
        yield
    finally:
        _RESULT_UNREAD.reset(token)
