"""Each staff member's own command menu, kept in step with their roles.

Telegram shows a chat the commands set for it (the chat scope) before the bot's
default menu, so a manager's chat lists /reports and an administrator's /grant. The
menu is a Bot API call like a message: it goes through the outbox, in the
transaction that changed the roles, and is retried like any other.
"""

from __future__ import annotations

from datetime import datetime

from aiogram.methods import DeleteMyCommands, SetMyCommands
from aiogram.types import BotCommandScopeChat

from bot.outbox import enqueue, method_payload
from bot.runtime.access import roles_of
from bot.runtime.context import Services
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.staff import StaffRoles

MENU_KIND = "menu"


class StaffMenus:
    """Queues a person's own command menu, or its removal, when it changes."""

    def __init__(self, services: Services) -> None:
        self._services = services

    async def queue(
        self,
        uow: UnitOfWork,
        person: CitizenRecord,
        *,
        now: datetime,
        language: str | None = None,
        roles: StaffRoles | None = None,
    ) -> bool:
        """Queue the menu the person's roles (looked up unless given) call for, in
        ``language`` (by default theirs): their own when they are staff, the removal of
        the one they had when not. Nothing when the last one queued for them says the
        same already."""
        if person.telegram_id is None:
            return False
        if roles is None:
            roles = await roles_of(self._services, uow, person)
        scope = BotCommandScopeChat(chat_id=person.telegram_id)
        method: SetMyCommands | DeleteMyCommands
        if roles.is_staff:
            commands = await self._services.command_menu(uow, language or person.language, roles)
            method = SetMyCommands(commands=commands, scope=scope)
        else:
            method = DeleteMyCommands(scope=scope)
        latest = await uow.repos.outbox.latest_call(person.id, MENU_KIND)
        if latest == method_payload(method) or (latest is None and not roles.is_staff):
            return False  # already so, or a citizen who never had a menu of their own
        await enqueue(
            uow,
            [method],
            chat_id=person.telegram_id,
            citizen_id=person.id,
            kind=MENU_KIND,
            now=now,
        )
        return True

    async def sync(self, uow: UnitOfWork, *, now: datetime) -> int:
        """At start-up: queue the menu of every staff member (ADMIN_IDS included) whose
        last one no longer fits (a flow's command or a role changed meanwhile)."""
        repos = uow.repos
        people = [await repos.citizens.by_id(member) for member in await repos.staff.member_ids()]
        for telegram_id in self._services.settings.admin_ids:
            people.append(await repos.citizens.by_telegram_id(telegram_id))
        queued = 0
        seen: set[int] = set()
        for person in people:
            if person is None or person.id in seen:
                continue
            seen.add(person.id)
            queued += await self.queue(uow, person, now=now)
        return queued
