"""Who may do what: role checks that sit on whole routers, buttons included."""

from __future__ import annotations

from typing import Any, Literal

from aiogram.filters import Filter
from aiogram.types import TelegramObject

from bot.runtime.context import Services
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.staff import NO_ROLES, StaffRoles

Need = Literal["admin", "staff"]


async def roles_of(services: Services, uow: UnitOfWork, citizen: CitizenRecord) -> StaffRoles:
    """The citizen's roles; ADMIN_IDS are administrators whatever the database says."""
    roles = await uow.repos.staff.roles_of(citizen.id)
    if citizen.telegram_id in services.settings.admin_ids and not roles.admin:
        return StaffRoles(admin=True, service_ids=roles.service_ids)
    return roles


class RequireRole(Filter):
    """Passes administrators (``admin``) or any staff member (``staff``).

    Put it on a router's ``message`` and ``callback_query`` observers, so a button
    press is checked exactly like a command. Handlers then receive ``roles``.
    """

    def __init__(self, need: Need) -> None:
        self.need = need

    async def __call__(
        self,
        event: TelegramObject,
        services: Services,
        uow: UnitOfWork,
        citizen: CitizenRecord | None = None,
    ) -> bool | dict[str, Any]:
        """True (with the roles) when the sender holds the role."""
        roles = NO_ROLES if citizen is None else await roles_of(services, uow, citizen)
        allowed = roles.admin if self.need == "admin" else roles.is_staff
        return {"roles": roles} if allowed else False
