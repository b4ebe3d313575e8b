"""Routers, one per feature, built by factories and included here in order."""

from __future__ import annotations

from aiogram import Dispatcher

from bot.handlers.account import build_account_router
from bot.handlers.admin import build_admin_router, build_refusal_router
from bot.handlers.broadcasts import build_broadcast_router
from bot.handlers.citizen import build_citizen_router
from bot.handlers.config_admin import build_config_admin_router
from bot.handlers.dialog import build_dialog_router
from bot.handlers.digests import build_digest_router
from bot.handlers.fallback import build_fallback_router
from bot.handlers.flows_admin import build_flows_admin_router
from bot.handlers.manager import build_manager_router
from bot.handlers.membership import build_membership_router
from bot.handlers.opportunities import build_opportunities_router


def include_routers(dispatcher: Dispatcher) -> None:
    """Attach every feature router; the fallback comes last."""
    dispatcher.include_routers(
        build_membership_router(),
        build_admin_router(),
        # Before the flows router: it takes only its own files, flows pass on.
        build_config_admin_router(),
        build_flows_admin_router(),
        build_manager_router(),
        build_digest_router(),
        build_broadcast_router(),
        build_opportunities_router(),
        build_refusal_router(),
        build_citizen_router(),
        build_account_router(),
        build_dialog_router(),
        build_fallback_router(),
    )
