"""Texts for citizens other than the one who wrote, in each one's language, via the outbox."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from bot.followups.texts import label
from bot.i18n import Markup, Translator
from bot.usecases.notify import send_later
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.staff import StaffRoles
from storage.repositories.volunteering import PromotedSignup


def local_time(moment: datetime, language: str, timezone: ZoneInfo) -> str:
    """A date and time as citizens read it, e.g. ``Sat 5 Dec, 09:30``."""

    return format_datetime(moment.astimezone(timezone), "EEE d MMM, HH:mm", locale=language)


async def queue_promotion_notices(
    uow: UnitOfWork,
    translator: Translator,
    timezone: ZoneInfo,
    promoted: Iterable[PromotedSignup],
    *,
    now: datetime,
) -> int:
    """Tell each volunteer moved up from a waiting list, through the outbox."""
    told = 0
    for item in promoted:
        citizen = await uow.repos.citizens.by_id(item.citizen_id)
        opportunity = await uow.repos.volunteering.opportunity_by_id(item.opportunity_id)
        if citizen is None or opportunity is None:
            continue
        language = citizen.language
        title = opportunity.titles.get(language) or next(iter(opportunity.titles.values()), "")
        text = translator.text(
            language,
            "volunteer.promoted",
            title=title,
            when=local_time(opportunity.starts_at, language, timezone),
            place=opportunity.place,
        )
        told += await send_later(
            uow, citizen, text, kind="promotion", key=f"promoted:{item.signup_id}", now=now
        )
    return told


class MenuKeeper(Protocol):
    """Keeps a person's own command menu in step with their roles (bot.staffmenu)."""

    async def queue(self, uow: UnitOfWork, person: CitizenRecord, *, now: datetime) -> bool:
        """Queue the menu the person's roles now call for, if it changed."""
        ...


async def describe_roles(
    uow: UnitOfWork, translator: Translator, language: str, roles: StaffRoles
) -> Markup:
    """A staff role in words: "an administrator", "manager of Street lighting, Roads"."""
    if roles.admin:  # administrators act on every service
        return Markup(translator.text(language, "role.admin"))
    names = [
        label(service.names, language) or service.code
        for service in await uow.repos.catalog.services()
        if service.id in roles.service_ids
    ]
    return Markup(translator.text(language, "role.manager", services=", ".join(names)))


async def queue_role_notices(
    uow: UnitOfWork,
    translator: Translator,
    citizen_ids: Iterable[int],
    *,
    now: datetime,
    menus: MenuKeeper | None = None,
) -> int:
    """Tell each person whose staff roles changed what they now are (or that it ended),
    and with ``menus`` give them the command menu that goes with it."""
    told = 0
    for citizen_id in sorted(set(citizen_ids)):
        person = await uow.repos.citizens.by_id(citizen_id)
        if person is None:
            continue
        roles = await uow.repos.staff.roles_of(citizen_id)
        language = person.language
        if roles.is_staff:
            role = await describe_roles(uow, translator, language, roles)
            text = translator.text(language, "role.granted", role=role)
        else:
            text = translator.text(language, "role.revoked")
        # Telling the same person the same roles at the same moment is one decision.
        state = ",".join(["admin"] * roles.admin + [str(i) for i in sorted(roles.service_ids)])
        digest = hashlib.blake2s(state.encode(), digest_size=8).hexdigest()
        key = f"role:{citizen_id}:{now.isoformat()}:{digest}"
        told += await send_later(uow, person, text, kind="role", key=key, now=now)
        if menus is not None:
            await menus.queue(uow, person, now=now)
    return told
