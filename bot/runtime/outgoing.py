"""Replies collected while an update is handled and sent after its transaction commits.

Sending inside the transaction would hold database locks (on SQLite, the one
write lock) for the length of a network call. A crash between the commit and the
send loses only the reply, never what the citizen told us.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.methods import TelegramMethod

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 30.0


class Outgoing:
    """An ordered list of Bot API calls to make once the update's work is saved."""

    def __init__(self) -> None:
        self._methods: list[TelegramMethod[Any]] = []

    def add(self, method: TelegramMethod[Any]) -> None:
        """Queue a call, e.g. ``out.add(message.answer(text))``."""
        self._methods.append(method)

    @property
    def methods(self) -> list[TelegramMethod[Any]]:
        """The queued calls, in order."""
        return list(self._methods)

    async def flush(self, bot: Bot) -> set[int]:
        """Make the calls in order; return the chats that refused us (403).

        A 429 is waited out once; "message is not modified" is not an error; other
        failures are logged and do not stop the remaining calls.
        """
        forbidden: set[int] = set()
        methods, self._methods = self._methods, []
        for method in methods:
            chat_id = getattr(method, "chat_id", None)
            if isinstance(chat_id, int) and chat_id in forbidden:
                continue
            try:
                await self._call(bot, method)
            except TelegramForbiddenError:
                if isinstance(chat_id, int):
                    forbidden.add(chat_id)
            except TelegramBadRequest as error:
                if "message is not modified" not in error.message:
                    log.warning("%s refused: %s", type(method).__name__, error.message)
            except (TelegramAPIError, TelegramNetworkError) as error:
                log.warning("%s failed: %s", type(method).__name__, type(error).__name__)
        return forbidden

    @staticmethod
    async def _call(bot: Bot, method: TelegramMethod[Any]) -> None:
        try:
            await bot(method)
        except TelegramRetryAfter as error:
            await asyncio.sleep(min(float(error.retry_after), MAX_RETRY_AFTER))
            await bot(method)
