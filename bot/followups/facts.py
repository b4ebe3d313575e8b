"""What a rule may read about its subject: the fields of :data:`dialogs.campaigns.SUBJECT_FIELDS`.

Facts are plain values for conditions and prefill (codes, booleans, numbers) and
texts in the citizen's language and time zone for messages (a category's name, a
local date).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from bot.conversation.service import profile_of
from bot.followups.texts import label, local_clock, local_date, local_moment, report_place
from bot.i18n import Translator
from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.reports import OPEN_STATUSES
from storage.repositories.volunteering import CONFIRMED, SCHEDULED


@dataclass(frozen=True, slots=True)
class Facts:
    """Values by namespace and field (``report.open``), for one citizen."""

    values: Mapping[str, Mapping[str, Any]]

    def resolve(self, path: tuple[str, ...]) -> Any:
        """The value at a dotted path, or None (an unknown name is simply unset)."""
        current: Any = self.values
        for part in path:
            if not isinstance(current, Mapping) or part not in current:
                return None
            current = current[part]
        return current

    def text(self, dotted: str) -> str:
        """A value as text in a message."""
        value = self.resolve(tuple(dotted.split(".")))
        if value is None:
            return ""
        if isinstance(value, bool):
            return "✓" if value else "✗"
        return str(value)


async def report_facts(
    uow: UnitOfWork,
    report_id: int,
    citizen: CitizenRecord,
    *,
    zone: tzinfo,
    now: datetime,
    translator: Translator,
) -> Facts | None:
    """What rules about a report may read; None when the report is gone."""
    report = await uow.repos.reports.by_id(report_id)
    if report is None:
        return None
    language = citizen.language
    service = await uow.repos.catalog.service_by_id(report.service_id)
    return Facts(
        {
            "report": {
                "reference": report.reference,
                "category": label(report.category_names, language) or report.category_code,
                "service": service.code if service is not None else "",
                "status": report.status,
                "open": report.status in OPEN_STATUSES,
                "location": report_place(report, language, translator),
                "created": local_date(report.created_at, language, zone),
                "age_days": (now - report.created_at).days,
            },
            "profile": profile_of(citizen),
        }
    )


async def signup_facts(
    uow: UnitOfWork, signup_id: int, citizen: CitizenRecord, *, zone: tzinfo
) -> Facts | None:
    """What rules about a sign-up may read; None when it is gone or no longer the citizen's."""
    subject = await uow.repos.followups.signup_subject(signup_id)
    if subject is None or subject.citizen_id != citizen.id:
        return None
    language = citizen.language
    return Facts(
        {
            "signup": {
                "id": subject.signup_id,
                "status": subject.status,
                "confirmed": subject.status == CONFIRMED,
            },
            "opportunity": {
                "code": subject.opportunity_code,
                "title": label(subject.titles, language),
                "place": subject.place,
                "when": local_moment(subject.starts_at, language, zone),
                "until": local_clock(subject.ends_at, language, zone),
                "status": subject.opportunity_status,
                "scheduled": subject.opportunity_status == SCHEDULED,
            },
            "profile": profile_of(citizen),
        }
    )
