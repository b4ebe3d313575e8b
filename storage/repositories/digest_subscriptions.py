"""Staff members' digest subscriptions, claimed with a lease when they fall due.

A subscription is a recurring job: when ``next_due_at`` comes, a worker claims the
row (see :func:`storage.repositories._dialect.claim_update`), composes the digest,
then in one transaction re-takes the row, queues the messages and moves
``next_due_at`` on. A claimer that crashed leaves the row to be taken again when
its lease runs out; changing the settings drops a claim in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import DigestSubscription
from storage.repositories._dialect import claim_update


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestSubscriptionRecord:
    """One subscription; ``service_ids`` empty means every service the person may see."""

    id: int
    citizen_id: int
    frequency: str
    weekday: int | None
    hour: int
    timezone: str
    service_ids: tuple[int, ...]
    next_due_at: datetime
    last_period_start: datetime | None
    last_period_end: datetime | None
    lease_until: datetime | None
    claimed_by: str | None
    attempts: int


_COLUMNS = (
    DigestSubscription.id,
    DigestSubscription.citizen_id,
    DigestSubscription.frequency,
    DigestSubscription.weekday,
    DigestSubscription.hour,
    DigestSubscription.timezone,
    DigestSubscription.service_ids,
    DigestSubscription.next_due_at,
    DigestSubscription.last_period_start,
    DigestSubscription.last_period_end,
    DigestSubscription.lease_until,
    DigestSubscription.claimed_by,
    DigestSubscription.attempts,
)


def _record(row: Any) -> DigestSubscriptionRecord:
    return DigestSubscriptionRecord(
        id=int(row.id),
        citizen_id=int(row.citizen_id),
        frequency=row.frequency,
        weekday=row.weekday,
        hour=int(row.hour),
        timezone=row.timezone,
        service_ids=tuple(sorted(int(value) for value in row.service_ids or ())),
        next_due_at=row.next_due_at,
        last_period_start=row.last_period_start,
        last_period_end=row.last_period_end,
        lease_until=row.lease_until,
        claimed_by=row.claimed_by,
        attempts=int(row.attempts),
    )


def _claimable(now: datetime) -> Any:
    """Due, and not held by a worker whose lease still runs."""
    return and_(
        DigestSubscription.next_due_at <= now,
        or_(DigestSubscription.lease_until.is_(None), DigestSubscription.lease_until <= now),
    )


def _held_by(subscription_id: int, worker_id: str) -> Any:
    return and_(
        DigestSubscription.id == subscription_id, DigestSubscription.claimed_by == worker_id
    )


class DigestSubscriptionRepository:
    """Reads, saves, claims and advances digest subscriptions (never commits)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def for_citizen(self, citizen_id: int) -> DigestSubscriptionRecord | None:
        """The person's subscription, if any."""
        row = (
            await self._session.execute(
                select(*_COLUMNS).where(DigestSubscription.citizen_id == citizen_id)
            )
        ).one_or_none()
        return None if row is None else _record(row)

    async def save(
        self,
        citizen_id: int,
        *,
        frequency: str,
        weekday: int | None,
        hour: int,
        timezone: str,
        service_ids: Sequence[int],
        next_due_at: datetime,
        now: datetime,
    ) -> DigestSubscriptionRecord:
        """Create or replace the person's subscription; a claim in flight is dropped."""
        values: dict[str, Any] = {
            "frequency": frequency,
            "weekday": weekday,
            "hour": hour,
            "timezone": timezone,
            "service_ids": sorted(set(service_ids)),
            "next_due_at": next_due_at,
            "lease_until": None,
            "claimed_by": None,
            "attempts": 0,
            "updated_at": now,
        }
        result = await self._session.execute(
            update(DigestSubscription)
            .where(DigestSubscription.citizen_id == citizen_id)
            .values(**values)
            .returning(*_COLUMNS)
            .execution_options(synchronize_session=False)
        )
        row = result.one_or_none()
        if row is None:
            self._session.add(DigestSubscription(citizen_id=citizen_id, created_at=now, **values))
            await self._session.flush()
            saved = await self.for_citizen(citizen_id)
            assert saved is not None
            return saved
        return _record(row)

    async def delete(self, citizen_id: int) -> bool:
        """Remove the person's subscription; False if there was none."""
        result = await self._session.execute(
            delete(DigestSubscription)
            .where(DigestSubscription.citizen_id == citizen_id)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0)) > 0

    async def claim_due(
        self, *, now: datetime, worker_id: str, lease_until: datetime, limit: int = 20
    ) -> list[DigestSubscriptionRecord]:
        """Take up to ``limit`` due subscriptions for ``worker_id`` until ``lease_until``.

        Soonest due first; commit promptly (PostgreSQL keeps the rows locked until then).
        """
        statement = claim_update(
            self._session,
            DigestSubscription,
            claimable=_claimable(now),
            order_by=(DigestSubscription.next_due_at, DigestSubscription.id),
            limit=limit,
            values={
                "claimed_by": worker_id,
                "lease_until": lease_until,
                "attempts": DigestSubscription.attempts + 1,
            },
            returning=_COLUMNS,
        )
        rows = (await self._session.execute(statement)).all()
        return sorted((_record(row) for row in rows), key=lambda r: (r.next_due_at, r.id))

    async def hold(self, subscription_id: int, worker_id: str) -> DigestSubscriptionRecord | None:
        """The subscription, locked until the transaction ends, if ``worker_id`` still has it."""
        row = (
            await self._session.execute(
                select(*_COLUMNS).where(_held_by(subscription_id, worker_id)).with_for_update()
            )
        ).one_or_none()
        return None if row is None else _record(row)

    async def advance(
        self,
        subscription_id: int,
        worker_id: str,
        *,
        next_due_at: datetime,
        period: tuple[datetime, datetime] | None,
        now: datetime,
    ) -> bool:
        """Release a held subscription, due again at ``next_due_at``.

        ``period`` is the one just sent (None when nothing was sent); attempts start
        again from zero.
        """
        values: dict[str, Any] = {
            "next_due_at": next_due_at,
            "lease_until": None,
            "claimed_by": None,
            "attempts": 0,
            "updated_at": now,
        }
        if period is not None:
            values["last_period_start"], values["last_period_end"] = period
        result = await self._session.execute(
            update(DigestSubscription)
            .where(_held_by(subscription_id, worker_id))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0)) > 0

    async def retry_later(self, subscription_id: int, worker_id: str, *, at: datetime) -> bool:
        """Give a held subscription back after a failure: claimable again at ``at``."""
        result = await self._session.execute(
            update(DigestSubscription)
            .where(_held_by(subscription_id, worker_id))
            .values(lease_until=at, claimed_by=None)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0)) > 0

    async def count(self) -> int:
        """How many subscriptions exist."""
        return int(await self._session.scalar(select(func.count(DigestSubscription.id))) or 0)
