"""Texts for citizens other than the one who wrote, in each one's language, via the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from bot.i18n import Translator
from bot.usecases.notify import send_later
from storage.db import UnitOfWork
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
