"""Whatever no feature router took: a gentle pointer to the menu, never silence or a crash."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.keyboards import main_menu
from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing


def build_fallback_router() -> Router:
    """Answers unsupported messages (stickers, voice notes...) and stale buttons."""
    router = Router(name="fallback")

    @router.message(F.chat.type == "private")
    async def unsupported(message: Message, services: Services, out: Outgoing, lang: str) -> None:
        t = services.translator
        out.add(message.answer(t.text(lang, "fallback.unknown"), reply_markup=main_menu(t, lang)))

    @router.callback_query()
    async def stale_button(query: CallbackQuery, services: Services, out: Outgoing) -> None:
        lang = services.translator.resolve_language(query.from_user.language_code)
        out.add(query.answer(services.translator.text(lang, "error.stale_button")))

    return router
