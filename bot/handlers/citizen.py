"""The citizen's basics: /start, /help, /language, /stop and the main menu."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandStart
from aiogram.types import CallbackQuery, Message

from bot.keyboards import language_picker, main_menu, menu_item_for
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.usecases.citizens import Greeting, choose_language, start_conversation, stop_messages
from storage.db import UnitOfWork
from storage.records import CitizenRecord

PRIVATE = F.chat.type == "private"


def build_citizen_router() -> Router:
    """Commands and menu buttons every citizen may use, in private chats only."""
    router = Router(name="citizen")
    router.message.filter(PRIVATE)
    router.callback_query.filter(F.message.chat.type == "private")

    @router.message(CommandStart())
    async def start(
        message: Message,
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
        t = services.translator
        name = citizen.first_name or ""
        key = {
            Greeting.NEW: "start.welcome",
            Greeting.RETURNING: "start.welcome_back",
            Greeting.RESUMED: "start.resumed",
        }[greeting]
        out.add(message.answer(t.text(lang, key, name=name), reply_markup=main_menu(t, lang)))

    @router.message(Command("help"))
    async def help_(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        out.add(message.answer(t.text(lang, "help.text"), reply_markup=main_menu(t, lang)))

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
        if query.message is not None:
            out.add(
                query.message.answer(
                    t.text(chosen, "language.changed"), reply_markup=main_menu(t, chosen)
                )
            )

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

    @router.message(F.text.func(lambda text: text is not None))
    async def menu_button(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        item = menu_item_for(t, message.text or "")
        if item is None:
            out.add(
                message.answer(t.text(lang, "fallback.unknown"), reply_markup=main_menu(t, lang))
            )
            return
        # The journeys behind the menu arrive with the flow engine; say so plainly.
        feature = t.text(lang, item)
        out.add(message.answer(t.text(lang, "menu.coming_soon", feature=feature)))

    return router
