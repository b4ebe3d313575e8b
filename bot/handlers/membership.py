"""The citizen blocking or unblocking the bot (``my_chat_member`` updates)."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.types import ChatMemberUpdated

from bot.runtime.context import Services
from bot.runtime.tuning import LeanRouter
from bot.usecases.citizens import note_reachability
from storage.db import UnitOfWork


def build_membership_router() -> Router:
    """Marks citizens unreachable when they block the bot, reachable when they return."""
    router = LeanRouter(name="membership")

    @router.my_chat_member(F.chat.type == "private")
    async def membership_changed(
        event: ChatMemberUpdated, services: Services, uow: UnitOfWork
    ) -> None:
        blocked = event.new_chat_member.status == "kicked"
        await note_reachability(uow, event.from_user.id, blocked=blocked, now=services.clock.now())

    return router
