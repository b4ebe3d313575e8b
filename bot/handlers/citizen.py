"""The citizen's basics: /start, /help, /language, /stop."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.commandmenu import staff_help
from bot.conversation.render import render
from bot.keyboards import language_picker
from bot.notices import describe_roles
from bot.runtime.access import roles_of
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from bot.staffmenu import StaffMenus
from bot.usecases.citizens import Greeting, choose_language, start_conversation, stop_messages
from bot.usecases.staff import INVITE_PREFIX, accept_invite
from storage.db import UnitOfWork
from storage.records import CitizenRecord

PRIVATE = F.chat.type == "private"


def build_citizen_router() -> Router:
    """Commands every citizen may use, in private chats only."""
    router = LeanRouter(name="citizen")
    router.message.filter(PRIVATE)
    router.callback_query.filter(F.message.chat.type == "private")

    @router.message(CommandStart())
    async def start(
        message: Message,
        command: CommandObject,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        citizen_created: bool,
        lang: str,
    ) -> None:
        greeting = await start_conversation(
            uow, citizen, created=citizen_created, now=services.clock.now()
        )
        key = {
            Greeting.NEW: "start.welcome",
            Greeting.RETURNING: "start.welcome_back",
            Greeting.RESUMED: "start.resumed",
        }[greeting]
        text = services.translator.text(lang, key, name=citizen.first_name or "")
        out.add(message.answer(text, reply_markup=await services.main_menu(uow, lang)))
        if command.args and command.args.startswith(INVITE_PREFIX):
            invite = await accept_invite(uow, citizen, command.args, now=services.clock.now())
            if invite is None:
                out.add(message.answer(services.translator.text(lang, "invite.invalid")))
                return
            roles = await roles_of(services, uow, citizen)
            role = await describe_roles(uow, services.translator, lang, roles)
            out.add(message.answer(services.translator.text(lang, "invite.accepted", role=role)))
            await StaffMenus(services).queue(uow, citizen, now=services.clock.now(), roles=roles)
            return
        # An unfinished conversation is not lost by a /start: ask its question again.
        turn = await services.conversations.reprompt(uow, citizen)
        if turn is not None:
            for method in render(turn.messages, chat_id=message.chat.id):
                out.add(method)

    @router.message(Command("help"))
    async def help_(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        t = services.translator
        roles = await roles_of(services, uow, citizen)
        text = "\n\n".join([t.text(lang, "help.text"), *staff_help(t, lang, roles)])
        out.add(message.answer(text, reply_markup=await services.main_menu(uow, lang)))
        if roles.is_staff:  # mends a menu that missed a change (ADMIN_IDS, say)
            await StaffMenus(services).queue(uow, citizen, now=services.clock.now(), roles=roles)

    @router.message(Command("language"))
    async def language(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        out.add(message.answer(t.text(lang, "language.choose"), reply_markup=language_picker(t)))

    @router.callback_query(F.data.startswith("lang:"))
    async def language_chosen(
        query: CallbackQuery,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
    ) -> None:
        t = services.translator
        chosen = (query.data or "").removeprefix("lang:")
        if not await choose_language(uow, citizen, chosen, supported=t.languages):
            out.add(query.answer(t.text(citizen.language, "error.stale_button")))
            return
        out.add(query.answer())
        await StaffMenus(services).queue(uow, citizen, now=services.clock.now(), language=chosen)
        if query.message is not None:
            menu = await services.main_menu(uow, chosen)
            out.add(query.message.answer(t.text(chosen, "language.changed"), reply_markup=menu))

    @router.message(Command("stop"))
    async def stop(
        message: Message,
        services: Services,
        uow: UnitOfWork,
        out: Outgoing,
        citizen: CitizenRecord,
        lang: str,
    ) -> None:
        await stop_messages(uow, citizen, now=services.clock.now())
        out.add(message.answer(services.translator.text(lang, "stop.done")))

    return router
