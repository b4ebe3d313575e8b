"""Administrators: roles, invitation links, the audit log. The whole router requires it."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message
from babel.dates import format_datetime

from bot.handlers.broadcasts import BROADCAST_COMMANDS
from bot.handlers.broadcasts import PREFIX as BROADCAST_PREFIX
from bot.handlers.config_admin import CONFIG_COMMANDS
from bot.handlers.digests import DIGEST_COMMANDS
from bot.handlers.digests import PREFIX as DIGEST_PREFIX
from bot.handlers.flows_admin import FLOW_COMMANDS
from bot.handlers.opportunities import OPPORTUNITY_COMMANDS
from bot.handlers.opportunities import PREFIX as OPPORTUNITY_PREFIX
from bot.notices import describe_roles, queue_role_notices
from bot.runtime.access import RequireRole
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.staffmenu import StaffMenus
from bot.usecases.staff import GrantResult, create_invite, grant_role, revoke_roles
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.staff import ADMIN, MANAGER, StaffRoles

ADMIN_COMMANDS = ("grant", "revoke", "invite", "audit")


def build_admin_router() -> Router:
    """Commands and buttons for administrators only (private chats)."""
    router = LeanRouter(name="admin")
    # Cheap filters first: the role lookup runs only for administrators' commands.
    router.message.filter(F.chat.type == "private", Command(*ADMIN_COMMANDS), RequireRole("admin"))
    router.callback_query.filter(
        F.message.chat.type == "private", F.data.startswith("adm:"), RequireRole("admin")
    )

    @router.message(Command("grant"))
    async def grant(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        words = (command.args or "").split()
        if (
            len(words) < 2
            or words[0] not in (ADMIN, MANAGER)
            or (words[0] == MANAGER) != (len(words) == 3)
        ):
            out.add(message.answer(t.text(lang, "grant.usage")))
            return
        role, person = words[0], words[1]
        service = words[2] if len(words) == 3 else None
        now = services.clock.now()
        outcome = await grant_role(uow, citizen, person, role, service, now=now)
        key = {
            GrantResult.GRANTED: "grant.done",
            GrantResult.ALREADY: "grant.already",
            GrantResult.UNKNOWN_PERSON: "grant.unknown_person",
            GrantResult.UNKNOWN_SERVICE: "grant.unknown_service",
        }[outcome.result]
        who = outcome.person.pseudonym if outcome.person else person
        held = ""
        if outcome.result is GrantResult.GRANTED and outcome.person is not None:
            roles = await uow.repos.staff.roles_of(outcome.person.id)
            held = await describe_roles(uow, t, lang, roles)
            menus = StaffMenus(services)
            await queue_role_notices(uow, t, [outcome.person.id], now=now, menus=menus)
        out.add(message.answer(t.text(lang, key, who=who, role=held, service=service)))

    @router.message(Command("revoke"))
    async def revoke(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        words = (command.args or "").split()
        if len(words) != 1:
            out.add(message.answer(t.text(lang, "revoke.usage")))
            return
        now = services.clock.now()
        person, removed = await revoke_roles(uow, citizen, words[0], now=now)
        if person is not None and removed:
            await queue_role_notices(uow, t, [person.id], now=now, menus=StaffMenus(services))
        who = person.pseudonym if person else words[0]
        key = "revoke.done" if removed else "revoke.none"
        out.add(message.answer(t.text(lang, key, who=who, count=removed)))

    @router.message(Command("invite"))
    async def invite(
        message: Message,
        command: CommandObject,
        bot: Bot,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        words = (command.args or "").split()
        role = words[0] if words else ""
        codes = [code for word in words[1:] for code in word.split(",") if code]
        if role not in (ADMIN, MANAGER) or (role == MANAGER and not codes):
            out.add(message.answer(t.text(lang, "invite.usage")))
            return
        code = await create_invite(uow, citizen, role, codes, now=services.clock.now())
        if code is None:
            out.add(message.answer(t.text(lang, "grant.unknown_service", service=",".join(codes))))
            return
        me = await bot.me()
        link = f"https://t.me/{me.username}?start={code}"
        service_ids = {s.id for s in await uow.repos.catalog.services() if s.code in codes}
        offered = StaffRoles(admin=role == ADMIN, service_ids=frozenset(service_ids))
        held = await describe_roles(uow, t, lang, offered)
        out.add(message.answer(t.text(lang, "invite.created", link=link, role=held)))

    @router.message(Command("audit"))
    async def audit(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        lang: str,
    ) -> None:
        t = services.translator
        entries = await uow.repos.staff.audit_entries(limit=20, action=(command.args or None))
        if not entries:
            out.add(message.answer(t.text(lang, "audit.empty")))
            return
        lines = [t.text(lang, "audit.title")]
        for entry in entries:
            when = format_datetime(entry.at, "d MMM HH:mm", locale=lang)
            details = ", ".join(f"{k}={v}" for k, v in entry.details.items() if v is not None)
            lines.append(
                t.text(
                    lang,
                    "audit.line",
                    when=when,
                    actor=entry.actor,
                    action=entry.action,
                    subject=entry.subject or "",
                    details=details,
                )
            )
        out.add(message.answer("\n".join(lines)))

    return router


# "/report" stays out: without a reference it is the citizens' report flow.
STAFF_COMMANDS = (
    *ADMIN_COMMANDS,
    *FLOW_COMMANDS,
    *CONFIG_COMMANDS,
    "reports",
    *DIGEST_COMMANDS,
    *BROADCAST_COMMANDS,
    *OPPORTUNITY_COMMANDS,
)
STAFF_BUTTON_PREFIXES = ("adm:", "mgr:", DIGEST_PREFIX, BROADCAST_PREFIX, OPPORTUNITY_PREFIX)


def build_refusal_router() -> Router:
    """Staff commands and buttons from anyone else: a polite refusal, nothing more."""
    router = LeanRouter(name="refusal")

    @router.message(Command(*STAFF_COMMANDS))
    async def refuse_command(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        lang: str,
        citizen: CitizenRecord | None = None,
    ) -> None:
        out.add(message.answer(services.translator.text(lang, "staff.refused")))
        if citizen is not None:  # a menu still offering what they may not do goes
            await StaffMenus(services).queue(uow, citizen, now=services.clock.now())

    @router.callback_query(F.data.startswith(STAFF_BUTTON_PREFIXES))
    async def refuse_button(
        query: CallbackQuery, services: Services, out: Outgoing, lang: str | None = None
    ) -> None:
        # Buttons from groups or channels come without a citizen (and so without lang).
        language = lang or services.translator.resolve_language(query.from_user.language_code)
        out.add(query.answer(services.translator.text(language, "staff.refused"), show_alert=True))

    return router
