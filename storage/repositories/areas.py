"""Areas (GeoJSON polygons) and which reports lie in them.

The active areas' bounding boxes, which every new report with a pin is tested
against, come from the process's
:class:`~storage.repositories._reference.ReferenceCache` (kept up to 30 s, dropped
when a change commits in this process).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Area, Report
from storage.repositories._reference import AREAS, ReferenceCache, cached, mark_changed

# Bound parameters per statement stay far below SQLite's and asyncpg's limits.
ID_CHUNK = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaRecord:
    """An area as the bot uses it."""

    id: int
    code: str
    names: dict[str, str]
    geometry: dict[str, Any]
    position: int
    active: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PinnedReport:
    """A report with a pin, and the area it is assigned to now."""

    id: int
    latitude: float
    longitude: float
    area_id: int | None


# (min latitude, min longitude, max latitude, max longitude) and the area.
_Boxed = tuple[tuple[float, float, float, float], AreaRecord]


def _record(row: Area) -> AreaRecord:
    return AreaRecord(
        id=row.id,
        code=row.code,
        names=dict(row.names),
        geometry=dict(row.geometry),
        position=row.position,
        active=row.active,
    )


class AreaRepository:
    """Reads and writes areas; assigns reports to them."""

    def __init__(self, session: AsyncSession, cache: ReferenceCache | None = None) -> None:
        self._session = session
        self._cache = cache

    async def all(self) -> list[AreaRecord]:
        """Every area, active or not, in display order."""
        rows = await self._session.scalars(select(Area).order_by(Area.position, Area.id))
        return [_record(row) for row in rows]

    async def active(self) -> list[AreaRecord]:
        """The active areas in display order."""
        rows = await self._session.scalars(
            select(Area).where(Area.active.is_(True)).order_by(Area.position, Area.id)
        )
        return [_record(row) for row in rows]

    async def _active_boxes(self) -> tuple[_Boxed, ...]:
        rows = await self._session.scalars(
            select(Area).where(Area.active.is_(True)).order_by(Area.position, Area.id)
        )
        return tuple(
            (
                (row.min_latitude, row.min_longitude, row.max_latitude, row.max_longitude),
                _record(row),
            )
            for row in rows
        )

    async def boxes_holding(self, latitude: float, longitude: float) -> list[AreaRecord]:
        """Active areas whose bounding box holds the point: the candidates for a polygon test."""
        boxed = await cached(self._cache, self._session, AREAS, self._active_boxes)
        return [
            area
            for (south, west, north, east), area in boxed
            if south <= latitude <= north and west <= longitude <= east
        ]

    async def id_by_code(self, code: str) -> int | None:
        """The id of the area with this code (active or not)."""
        return await self._session.scalar(select(Area.id).where(Area.code == code))

    async def upsert(
        self,
        *,
        code: str,
        names: Mapping[str, str],
        geometry: Mapping[str, Any],
        box: tuple[float, float, float, float],
        position: int,
        active: bool,
        now: datetime,
    ) -> tuple[int, bool]:
        """Create or replace the area with this code; returns (id, whether it changed).

        ``box`` is (min latitude, min longitude, max latitude, max longitude).
        """
        mark_changed(self._session, AREAS)
        row = await self._session.scalar(select(Area).where(Area.code == code))
        values: dict[str, Any] = {
            "names": dict(names),
            "geometry": dict(geometry),
            "min_latitude": box[0],
            "min_longitude": box[1],
            "max_latitude": box[2],
            "max_longitude": box[3],
            "position": position,
            "active": active,
        }
        if row is None:
            row = Area(code=code, updated_at=now, **values)
            self._session.add(row)
            await self._session.flush()
            return row.id, True
        changed = any(getattr(row, key) != value for key, value in values.items())
        if changed:
            for key, value in values.items():
                setattr(row, key, value)
            row.updated_at = now
            await self._session.flush()
        return row.id, changed

    async def deactivate_except(self, codes: Sequence[str], *, now: datetime) -> list[str]:
        """Deactivate the active areas whose code is not listed; returns their codes.

        Areas are never deleted: reports keep pointing at them until reassigned.
        """
        mark_changed(self._session, AREAS)
        statement = select(Area.code).where(Area.active.is_(True))
        if codes:
            statement = statement.where(Area.code.not_in(list(codes)))
        gone = list(await self._session.scalars(statement.order_by(Area.code)))
        if gone:
            await self._session.execute(
                update(Area)
                .where(Area.code.in_(gone))
                .values(active=False, updated_at=now)
                .execution_options(synchronize_session=False)
            )
        return gone

    async def pinned_reports(self, *, after_id: int, limit: int) -> list[PinnedReport]:
        """Reports with a pin, by id from ``after_id`` on (keyset pages)."""
        result = await self._session.execute(
            select(Report.id, Report.latitude, Report.longitude, Report.area_id)
            .where(
                Report.id > after_id,
                Report.latitude.is_not(None),
                Report.longitude.is_not(None),
            )
            .order_by(Report.id)
            .limit(limit)
        )
        return [
            PinnedReport(id=row[0], latitude=row[1], longitude=row[2], area_id=row[3])
            for row in result.all()
            if row[1] is not None and row[2] is not None
        ]

    async def assign_reports(self, area_id: int | None, report_ids: Sequence[int]) -> int:
        """Put these reports in an area (or in none); one UPDATE per chunk of ids."""
        changed = 0
        for start in range(0, len(report_ids), ID_CHUNK):
            chunk = list(report_ids[start : start + ID_CHUNK])
            result = await self._session.execute(
                update(Report)
                .where(Report.id.in_(chunk))
                .values(area_id=area_id)
                .execution_options(synchronize_session=False)
            )
            changed += int(result.rowcount)  # type: ignore[attr-defined]
        return changed
