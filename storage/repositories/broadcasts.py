"""Broadcasts: the segment a message goes to, its outbox rows, and its progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Area,
    Broadcast,
    Category,
    Citizen,
    OutboxMessage,
    Rating,
    Report,
    Service,
    VolunteerProfile,
)
from storage.repositories._dialect import items_shared
from storage.repositories.outbox import DROPPED, FAILED, SENT

COMPOSING: Final = "composing"
SENDING: Final = "sending"
DONE: Final = "done"
CANCELLED: Final = "cancelled"

EVERYONE: Final = "all"
SEGMENT_KINDS: Final = (EVERYONE, "language", "area", "skill", "category", "service")

# Broadcast rows go after the messages already due: they never hold up a reply,
# a reminder or a digest (the sender takes due rows by time, then priority).
BROADCAST_PRIORITY: Final = 500


@dataclass(frozen=True, slots=True)
class Segment:
    """Who a broadcast is for: ``kind`` (one of SEGMENT_KINDS) and its ``value``."""

    kind: str
    value: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "value": self.value}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Segment:
        value = document.get("value")
        return cls(
            kind=str(document.get("kind") or EVERYONE), value=None if value is None else str(value)
        )


@dataclass(frozen=True, slots=True)
class BroadcastRecord:
    id: int
    author_id: int | None
    chat_id: int
    segment: Segment
    text: str | None
    photo_file_id: str | None
    status: str
    total: int
    progress: dict[str, int]
    progress_message_id: int | None
    created_at: datetime
    confirmed_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a broadcast's messages are: delivered, blocked, skipped, failed, waiting."""

    delivered: int = 0
    blocked: int = 0
    skipped: int = 0
    failed: int = 0
    waiting: int = 0

    @property
    def finished(self) -> bool:
        return self.waiting == 0

    def as_json(self) -> dict[str, int]:
        return {
            "delivered": self.delivered,
            "blocked": self.blocked,
            "skipped": self.skipped,
            "failed": self.failed,
            "waiting": self.waiting,
        }


def _record(row: Broadcast) -> BroadcastRecord:
    return BroadcastRecord(
        id=row.id,
        author_id=row.author_id,
        chat_id=row.chat_id,
        segment=Segment.from_json(row.segment),
        text=row.text,
        photo_file_id=row.photo_file_id,
        status=row.status,
        total=row.total,
        progress={str(key): int(value) for key, value in (row.progress or {}).items()},
        progress_message_id=row.progress_message_id,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        finished_at=row.finished_at,
    )


def _reachable() -> ColumnElement[bool]:
    """Citizens who may be written to: they wrote to the bot, no /stop, not blocked, not erased."""
    return and_(
        Citizen.telegram_id.is_not(None),
        Citizen.stopped_at.is_(None),
        Citizen.unreachable_at.is_(None),
        Citizen.erased_at.is_(None),
    )


class BroadcastRepository:
    """Stores broadcasts, resolves segments, queues and counts their messages."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def start(self, *, author_id: int, chat_id: int, segment: Segment, now: datetime) -> int:
        """A new broadcast being composed; the author's earlier unsent drafts are dropped."""
        await self._session.execute(
            update(Broadcast)
            .where(Broadcast.author_id == author_id, Broadcast.status == COMPOSING)
            .values(status=CANCELLED, finished_at=now)
        )
        row = Broadcast(
            author_id=author_id,
            chat_id=chat_id,
            segment=segment.as_json(),
            status=COMPOSING,
            total=0,
            progress={},
            created_at=now,
        )
        self._session.add(row)
        await self._session.flush()
        return row.id

    async def get(self, broadcast_id: int) -> BroadcastRecord | None:
        row = await self._session.get(Broadcast, broadcast_id)
        return None if row is None else _record(row)

    async def composing(self, author_id: int) -> BroadcastRecord | None:
        """The author's broadcast being composed, if any (the latest)."""
        row = (
            await self._session.execute(
                select(Broadcast)
                .where(Broadcast.author_id == author_id, Broadcast.status == COMPOSING)
                .order_by(Broadcast.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        return None if row is None else _record(row)

    async def set_content(
        self, broadcast_id: int, *, text: str | None, photo_file_id: str | None
    ) -> bool:
        result = await self._session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == COMPOSING)
            .values(text=text, photo_file_id=photo_file_id)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def cancel(self, broadcast_id: int, author_id: int, now: datetime) -> bool:
        """Drop a draft (only its author's, only while composing)."""
        result = await self._session.execute(
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                Broadcast.author_id == author_id,
                Broadcast.status == COMPOSING,
            )
            .values(status=CANCELLED, finished_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def confirm(self, broadcast_id: int, author_id: int, now: datetime) -> bool:
        """composing → sending, once: a second press of the button finds nothing to do."""
        result = await self._session.execute(
            update(Broadcast)
            .where(
                Broadcast.id == broadcast_id,
                Broadcast.author_id == author_id,
                Broadcast.status == COMPOSING,
                or_(Broadcast.text.is_not(None), Broadcast.photo_file_id.is_not(None)),
            )
            .values(status=SENDING, confirmed_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- segments ----------------------------------------------------------------------

    def _segment_filter(self, segment: Segment) -> ColumnElement[bool] | None:
        """The SQL condition of a segment (None for an unknown kind)."""
        value = segment.value or ""
        if segment.kind == EVERYONE:
            return _reachable()
        if segment.kind == "language":
            return and_(_reachable(), Citizen.language == value)
        if segment.kind == "area":
            return and_(
                _reachable(),
                exists().where(
                    Report.citizen_id == Citizen.id,
                    Report.area_id == Area.id,
                    Area.code == value,
                ),
            )
        if segment.kind == "category":
            return and_(
                _reachable(),
                exists().where(
                    Report.citizen_id == Citizen.id,
                    Report.category_id == Category.id,
                    Category.code == value,
                ),
            )
        if segment.kind == "service":  # the service's participants: reporters and raters
            return and_(
                _reachable(),
                or_(
                    exists().where(
                        Report.citizen_id == Citizen.id,
                        Report.service_id == Service.id,
                        Service.code == value,
                    ),
                    exists().where(
                        Rating.citizen_id == Citizen.id,
                        Rating.service_id == Service.id,
                        Service.code == value,
                    ),
                ),
            )
        if segment.kind == "skill":
            return and_(
                _reachable(),
                exists().where(
                    VolunteerProfile.citizen_id == Citizen.id,
                    items_shared(self._session, VolunteerProfile.skills, [value]),
                ),
            )
        return None

    async def recipients(self, segment: Segment) -> list[tuple[int, int]]:
        """(citizen id, chat id) of everyone the segment reaches now, by citizen id."""
        condition = self._segment_filter(segment) if segment.kind in SEGMENT_KINDS else None
        if condition is None:
            return []
        rows = await self._session.execute(
            select(Citizen.id, Citizen.telegram_id).where(condition).order_by(Citizen.id)
        )
        # _reachable() keeps only citizens with a Telegram id.
        return [(citizen_id, chat_id) for citizen_id, chat_id in rows.all() if chat_id is not None]

    async def skills(self) -> list[str]:
        """Skills volunteers have declared, for the segment picker."""
        rows = await self._session.execute(select(VolunteerProfile.skills))
        found = {
            str(item) for (skills,) in rows.all() for item in (skills or {}).get("items") or ()
        }
        return sorted(found)

    # --- sending -----------------------------------------------------------------------

    async def set_total(self, broadcast_id: int, total: int) -> None:
        """How many messages the broadcast queued."""
        await self._session.execute(
            update(Broadcast).where(Broadcast.id == broadcast_id).values(total=total)
        )

    async def sending(self) -> list[BroadcastRecord]:
        rows = await self._session.execute(
            select(Broadcast).where(Broadcast.status == SENDING).order_by(Broadcast.id)
        )
        return [_record(row) for row in rows.scalars().all()]

    async def progress(self, broadcast_id: int) -> Progress:
        """Counts of the broadcast's outbox rows, in SQL."""
        blocked = or_(
            OutboxMessage.last_error.like("TelegramForbiddenError%"),
            OutboxMessage.last_error == "citizen blocked the bot",
        )
        bucket = case(
            (OutboxMessage.status == SENT, "delivered"),
            (and_(OutboxMessage.status == DROPPED, blocked), "blocked"),
            (OutboxMessage.status == DROPPED, "skipped"),
            (OutboxMessage.status == FAILED, "failed"),
            else_="waiting",
        )
        rows = await self._session.execute(
            select(bucket, func.count())
            .where(OutboxMessage.broadcast_id == broadcast_id)
            .group_by(bucket)
        )
        return Progress(**{str(name): int(count) for name, count in rows.all()})

    async def claim_progress_message(self, broadcast_id: int) -> bool:
        """Take the right to post the progress message (0 marks "being posted")."""
        result = await self._session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.progress_message_id.is_(None))
            .values(progress_message_id=0)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def set_progress_message(self, broadcast_id: int, message_id: int | None) -> None:
        await self._session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id)
            .values(progress_message_id=message_id)
        )

    async def record_progress(self, broadcast_id: int, progress: Progress) -> bool:
        """Store the counts shown; False once the broadcast is no longer sending."""
        result = await self._session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == SENDING)
            .values(progress=progress.as_json())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def finish(self, broadcast_id: int, progress: Progress, now: datetime) -> bool:
        """sending → done with the final counts, once (several instances may look)."""
        result = await self._session.execute(
            update(Broadcast)
            .where(Broadcast.id == broadcast_id, Broadcast.status == SENDING)
            .values(status=DONE, progress=progress.as_json(), finished_at=now)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
