"""Texts for citizens other than the one who wrote: rendered in each one's language.

Issue 4's outbox will carry these; today they are sent right after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_datetime

from bot.i18n import Translator
from storage.db import UnitOfWork
from storage.repositories.volunteering import PromotedSignup


def local_time(moment: datetime, language: str, timezone: ZoneInfo) -> str:
    """A date and time as citizens read it, e.g. ``Sat 5 Dec, 09:30``."""

    return format_datetime(moment.astimezone(timezone), "EEE d MMM, HH:mm", locale=language)


async def promotion_notices(
    uow: UnitOfWork,
    translator: Translator,
    timezone: ZoneInfo,
    promoted: Iterable[PromotedSignup],
) -> list[tuple[int, str]]:
    """A "place opened for you" for each volunteer moved up from a waiting list."""
    notices = []
    for item in promoted:
        citizen = await uow.repos.citizens.by_id(item.citizen_id)
        opportunity = await uow.repos.volunteering.opportunity_by_id(item.opportunity_id)
        if citizen is None or citizen.telegram_id is None or opportunity is None:
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
        notices.append((citizen.telegram_id, text))
    return notices
