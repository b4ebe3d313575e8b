"""Typed services handed to handlers (instead of an untyped bag of middleware keys)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiogram.types import BotCommand, ReplyKeyboardMarkup

from bot.clock import Clock
from bot.commandmenu import command_menu
from bot.config import Settings
from bot.conversation.service import Conversations
from bot.i18n import Translator
from bot.keyboards import main_menu
from storage.db import Database, UnitOfWork
from storage.repositories.staff import NO_ROLES, StaffRoles


def default_worker_id() -> str:
    """A name for this process's claims: host and process id."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


@dataclass(frozen=True, slots=True)
class Signals:
    """Wake-ups for background workers of this process."""

    photos_pending: asyncio.Event = field(default_factory=asyncio.Event)
    outbox_pending: asyncio.Event = field(default_factory=asyncio.Event)
    followups_due: asyncio.Event = field(default_factory=asyncio.Event)


class BackgroundTasks:
    """Work started by handlers that outlives their update (see ``Outgoing.later``);
    shutdown and tests wait for it with :meth:`join`."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run ``work`` in the background (it handles its own failures)."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def join(self, grace: float | None = None) -> bool:
        """Wait for the work running now (``grace`` seconds at most, then cancel it);
        True when it all finished."""
        tasks = set(self._tasks)
        if not tasks:
            return True
        _, late = await asyncio.wait(tasks, timeout=grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        return not late


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What every handler and use case may depend on; built once at start-up."""

    settings: Settings
    database: Database
    translator: Translator
    clock: Clock
    conversations: Conversations
    signals: Signals = field(default_factory=Signals)
    # Names this process's claims (outbox, follow-ups, digests, replies being sent).
    # WORKER_ID, when stable, lets a restarted instance take its own claims back at
    # once instead of waiting for their leases to run out.
    worker_id: str = field(default_factory=default_worker_id)
    background: BackgroundTasks = field(default_factory=BackgroundTasks)
    # The last menu built per language, with the published set it was built from.
    _menus: dict[str, tuple[object, ReplyKeyboardMarkup]] = field(default_factory=dict)

    async def main_menu(self, uow: UnitOfWork, language: str) -> ReplyKeyboardMarkup:
        """The main menu of the flows published now (built again only when they change:
        most replies carry it)."""
        published = await self.conversations.published(uow)
        kept = self._menus.get(language)
        if kept is not None and kept[0] is published:
            return kept[1]
        menu = main_menu(published, language)
        self._menus[language] = (published, menu)
        return menu

    async def command_menu(
        self, uow: UnitOfWork, language: str, roles: StaffRoles = NO_ROLES
    ) -> list[BotCommand]:
        """Telegram's command menu for ``roles`` (see :func:`bot.commandmenu.command_menu`)
        over the flows published now."""
        published = await self.conversations.published(uow)
        return command_menu(published, self.translator, language, roles)
