"""Import aiogram without building every pydantic model up front.

``import aiogram`` builds the validators and serialisers of its 640 models at once
(``aiogram/types/__init__.py`` calls ``model_rebuild`` on each): about 160 MB of
memory (aiogram issue #1513), while a bot uses a few dozen of them. Imported
through :func:`install`, aiogram's models are deferred (pydantic's ``defer_build``)
and each is built the first time it is used, with every aiogram type in its
namespace so that forward references resolve as in the eager build: the same
models, about 100 MB less.

It must run before anything imports aiogram, so ``bot/__init__.py`` calls it.
``CITIZENBOT_EAGER_AIOGRAM=1`` turns it off.

Every aiogram object (an update's message, its chat, each button; each Bot API call)
ends its construction in ``model_post_init``, which binds it to the bot. pydantic
wraps that method once per class level (``TelegramObject``, ``Message``...), each
wrapper initialising the private attributes again, all in Python: about half the cost
of parsing an update. :func:`bind_bot_directly` gives the classes one function with
the same effect (``_bot`` is aiogram's only private attribute).
"""

from __future__ import annotations

import inspect
import os
import sys
import typing
from collections.abc import Iterator
from typing import Any

ENVIRONMENT_VARIABLE = "CITIZENBOT_EAGER_AIOGRAM"


def _aiogram_models(root: type[Any]) -> Iterator[type[Any]]:
    for child in root.__subclasses__():
        if child.__module__.startswith("aiogram."):
            yield child
        yield from _aiogram_models(child)


def _bind_bot(self: Any, context: Any, /) -> None:
    """What pydantic's wrappers around ``BotContextController.model_post_init`` do."""
    bot = context.get("bot") if context else None
    private = getattr(self, "__pydantic_private__", None)
    if private is None:
        object.__setattr__(self, "__pydantic_private__", {"_bot": bot})
    else:
        private["_bot"] = bot


_ORIGINAL_POST_INIT: list[Any] = []  # aiogram's own, unwrapped (found once)


def bind_bot_directly() -> int:
    """Give aiogram's model classes :func:`_bind_bot` as ``model_post_init``; returns how
    many changed. A class with other private attributes or its own post-init keeps
    pydantic's; so do subclasses made later, until this runs again."""
    from aiogram.client.context_controller import BotContextController

    if not _ORIGINAL_POST_INIT:
        _ORIGINAL_POST_INIT.append(inspect.unwrap(BotContextController.model_post_init))
    ours = (_ORIGINAL_POST_INIT[0], _bind_bot)
    changed = 0
    models: list[type[Any]] = [BotContextController, *_subclasses(BotContextController)]
    for model in models:
        current = model.model_post_init
        if current is _bind_bot or set(model.__private_attributes__) != {"_bot"}:
            continue
        # Subclasses made after a first run wrap _bind_bot itself.
        if inspect.unwrap(current) in ours:
            model.model_post_init = _bind_bot
            changed += 1
    return changed


def _subclasses(root: type[Any]) -> Iterator[type[Any]]:
    for child in root.__subclasses__():
        yield child
        yield from _subclasses(child)


def install() -> bool:
    """Import aiogram with deferred models; False when it was imported already (or off)."""
    if "aiogram" in sys.modules or os.environ.get(ENVIRONMENT_VARIABLE):
        bind_bot_directly()
        return False
    from pydantic import BaseModel
    from pydantic._internal import _config

    for_model = _config.ConfigWrapper.for_model.__func__  # type: ignore[attr-defined]
    rebuild = BaseModel.model_rebuild.__func__  # type: ignore[attr-defined]

    def deferred_for_model(cls: Any, bases: Any, namespace: Any, /, *args: Any) -> Any:
        wrapper = for_model(cls, bases, namespace, *args)
        if str(namespace.get("__module__", "")).startswith("aiogram."):
            wrapper.config_dict["defer_build"] = True
        return wrapper

    def rebuild_later(cls: Any, /, **kwargs: Any) -> Any:
        # aiogram.types rebuilds every model with its namespace: leave them deferred.
        if kwargs.get("_types_namespace") is not None and cls.__module__.startswith("aiogram."):
            return None
        return rebuild(cls, **kwargs)

    _config.ConfigWrapper.for_model = classmethod(deferred_for_model)  # type: ignore[method-assign,assignment]
    BaseModel.model_rebuild = classmethod(rebuild_later)  # type: ignore[method-assign,assignment]
    try:
        import aiogram
        import aiogram.methods
        import aiogram.types
        from aiogram.client.default import Default
    finally:
        _config.ConfigWrapper.for_model = classmethod(for_model)  # type: ignore[method-assign,assignment]
        BaseModel.model_rebuild = classmethod(rebuild)  # type: ignore[method-assign,assignment]
    namespace: dict[str, Any] = {
        "List": list,
        "Optional": typing.Optional,
        "Union": typing.Union,
        "Literal": typing.Literal,
        "Default": Default,
    }
    for module in (aiogram.types, aiogram.methods):
        namespace.update({name: getattr(module, name) for name in module.__all__})
    for model in _aiogram_models(BaseModel):
        # Read when the model is built; generic models made later (Response[T]) inherit it.
        model.__pydantic_parent_namespace__ = namespace
    bind_bot_directly()
    return True
