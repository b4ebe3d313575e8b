"""Whatever no feature router took: a gentle pointer to the menu, never silence or a crash."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message

from bot.runtime.context import Services
from bot.runtime.outgoing import Outgoing
from bot.runtime.tuning import LeanRouter
from storage.db import UnitOfWork


def build_fallback_router() -> Router:
    """Answers unsupported messages (stickers, voice notes...) and stale buttons."""
    router = LeanRouter(name="fallback")

    @router.message(F.chat.type == "private")
    async def unsupported(
        message: Message, services: Services, uow: UnitOfWork, out: Outgoing, lang: str
    ) -> None:
        text = services.translator.text(lang, "fallback.unknown")
        out.add(message.answer(text, reply_markup=await services.main_menu(uow, lang)))

    @router.callback_query()
    async def stale_button(
        query: CallbackQuery, services: Services, out: Outgoing, lang: str | None = None
    ) -> None:
        language = lang or services.translator.resolve_language(query.from_user.language_code)
        out.add(query.answer(services.translator.text(language, "error.stale_button")))

    return router
