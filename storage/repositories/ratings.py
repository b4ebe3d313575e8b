"""Ratings: citizens' satisfaction with a service (CSAT, its drivers, effort, NPS, a comment).

Scores are validated by the dialog flow that collects them (the registry's parameter
models hold the scales); this layer stores them as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Rating, Service


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingRecord:
    """One rating as the application sees it."""

    id: int
    citizen_id: int | None
    service_id: int
    report_id: int | None
    overall: int
    timeliness: int | None
    knowledge: int | None
    courtesy: int | None
    fairness: int | None
    outcome: int | None
    effort: int | None
    nps: int | None
    comment: str | None
    language: str
    created_at: datetime


_COLUMNS = (
    Rating.id,
    Rating.citizen_id,
    Rating.service_id,
    Rating.report_id,
    Rating.overall,
    Rating.timeliness,
    Rating.knowledge,
    Rating.courtesy,
    Rating.fairness,
    Rating.outcome,
    Rating.effort,
    Rating.nps,
    Rating.comment,
    Rating.language,
    Rating.created_at,
)
# The scores exported to the citizen, in the order the rating flow asks them.
_SCORES = (
    "overall",
    "timeliness",
    "knowledge",
    "courtesy",
    "fairness",
    "outcome",
    "effort",
    "nps",
)


def _record(row: Any) -> RatingRecord:
    return RatingRecord(
        id=row.id,
        citizen_id=row.citizen_id,
        service_id=row.service_id,
        report_id=row.report_id,
        overall=row.overall,
        timeliness=row.timeliness,
        knowledge=row.knowledge,
        courtesy=row.courtesy,
        fairness=row.fairness,
        outcome=row.outcome,
        effort=row.effort,
        nps=row.nps,
        comment=row.comment,
        language=row.language,
        created_at=row.created_at,
    )


class RatingRepository:
    """Stores ratings and reads a citizen's own."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add(
        self,
        *,
        citizen_id: int | None,
        service_id: int,
        report_id: int | None,
        overall: int,
        timeliness: int | None,
        knowledge: int | None,
        courtesy: int | None,
        fairness: int | None,
        outcome: int | None,
        effort: int | None,
        nps: int | None,
        comment: str | None,
        language: str,
        now: datetime,
    ) -> int:
        """Store a rating; return its id."""
        result = await self._session.execute(
            insert(Rating)
            .values(
                citizen_id=citizen_id,
                service_id=service_id,
                report_id=report_id,
                overall=overall,
                timeliness=timeliness,
                knowledge=knowledge,
                courtesy=courtesy,
                fairness=fairness,
                outcome=outcome,
                effort=effort,
                nps=nps,
                comment=comment,
                language=language,
                created_at=now,
            )
            .returning(Rating.id)
        )
        return int(result.scalar_one())

    async def for_citizen(self, citizen_id: int) -> list[RatingRecord]:
        """The citizen's ratings, newest first."""
        result = await self._session.execute(
            select(*_COLUMNS)
            .where(Rating.citizen_id == citizen_id)
            .order_by(Rating.created_at.desc(), Rating.id.desc())
        )
        return [_record(row) for row in result.all()]

    async def export_for_citizen(self, citizen_id: int) -> list[dict[str, Any]]:
        """The citizen's ratings as JSON-able dicts (/mydata), oldest first."""
        result = await self._session.execute(
            select(*_COLUMNS, Service.code.label("service_code"))
            .join(Service, Service.id == Rating.service_id)
            .where(Rating.citizen_id == citizen_id)
            .order_by(Rating.id)
        )
        return [
            {
                "kind": "rating",
                "id": row.id,
                "service": row.service_code,
                "report_id": row.report_id,
                **{name: getattr(row, name) for name in _SCORES},
                "comment": row.comment,
                "language": row.language,
                "created_at": row.created_at.isoformat(),
            }
            for row in result.all()
        ]

    async def anonymise_citizen(self, citizen_id: int) -> int:
        """Detach the citizen's ratings from them (/forget); return how many.

        Ratings and their comments stay: they are the service's feedback, no longer
        anyone's.
        """
        result = await self._session.execute(
            update(Rating)
            .where(Rating.citizen_id == citizen_id)
            .values(citizen_id=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
