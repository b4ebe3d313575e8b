"""Flow revisions: immutable, numbered; one is published per flow."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, FlowRevision
from storage.records import FlowRevisionRecord


def _record(row: FlowRevision) -> FlowRevisionRecord:
    return FlowRevisionRecord(
        id=row.id,
        flow_id=row.flow_id,
        number=row.number,
        source=row.source,
        checksum=row.checksum,
        author=row.author,
        created_at=row.created_at,
        published=row.published,
    )


class FlowRepository:
    """Stores flow sources as revisions and tracks the published one."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def published(self, flow_id: str) -> FlowRevisionRecord | None:
        """The published revision of a flow, if any."""
        row = await self._session.scalar(
            select(FlowRevision).where(
                FlowRevision.flow_id == flow_id, FlowRevision.published.is_(True)
            )
        )
        return None if row is None else _record(row)

    async def all_published(self) -> list[FlowRevisionRecord]:
        """The published revision of every flow."""
        rows = await self._session.scalars(
            select(FlowRevision)
            .where(FlowRevision.published.is_(True))
            .order_by(FlowRevision.flow_id)
        )
        return [_record(row) for row in rows]

    async def by_id(self, revision_id: int) -> FlowRevisionRecord | None:
        """One revision by its id (sessions point at it)."""
        row = await self._session.get(FlowRevision, revision_id)
        return None if row is None else _record(row)

    async def by_number(self, flow_id: str, number: int) -> FlowRevisionRecord | None:
        """One revision of a flow by its number."""
        row = await self._session.scalar(
            select(FlowRevision).where(
                FlowRevision.flow_id == flow_id, FlowRevision.number == number
            )
        )
        return None if row is None else _record(row)

    async def flow_ids(self) -> list[str]:
        """Every flow with at least one revision, published or not."""
        rows = await self._session.scalars(
            select(FlowRevision.flow_id).distinct().order_by(FlowRevision.flow_id)
        )
        return list(rows)

    async def numbers_marked(self, flow_id: str, action: str) -> set[int]:
        """Revision numbers of a flow named by audit entries of ``action`` (e.g. discarded).

        Revisions are immutable, so what an administrator decided about one (a
        discarded draft) is read from the audit trail that records the decision.
        """
        rows = await self._session.scalars(
            select(AuditEntry.details).where(
                AuditEntry.action == action, AuditEntry.subject == flow_id
            )
        )
        return {int(details["revision"]) for details in rows if "revision" in details}

    async def revisions(self, flow_id: str) -> list[FlowRevisionRecord]:
        """Every revision of a flow, newest first."""
        rows = await self._session.scalars(
            select(FlowRevision)
            .where(FlowRevision.flow_id == flow_id)
            .order_by(FlowRevision.number.desc())
        )
        return [_record(row) for row in rows]

    async def add(
        self, *, flow_id: str, source: str, checksum: str, author: str, now: datetime
    ) -> FlowRevisionRecord:
        """Store a new, unpublished revision numbered after the last one."""
        last = await self._session.scalar(
            select(func.max(FlowRevision.number)).where(FlowRevision.flow_id == flow_id)
        )
        row = FlowRevision(
            flow_id=flow_id,
            number=int(last or 0) + 1,
            source=source,
            checksum=checksum,
            author=author,
            created_at=now,
            published=False,
        )
        self._session.add(row)
        await self._session.flush()
        return _record(row)

    async def publish(self, revision_id: int) -> None:
        """Make this revision the published one of its flow."""
        row = await self._session.get(FlowRevision, revision_id)
        if row is None:
            raise LookupError(f"no flow revision {revision_id}")
        await self._session.execute(
            update(FlowRevision)
            .where(FlowRevision.flow_id == row.flow_id, FlowRevision.id != revision_id)
            .values(published=False)
        )
        row.published = True
        await self._session.flush()
