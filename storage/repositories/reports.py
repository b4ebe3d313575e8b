"""Reports: creation with a public reference, duplicates nearby, followers, history."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    Row,
    Select,
    String,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Category, Report, ReportEvent, ReportFollower, ReportPhoto
from storage.records import ReportEventRecord, ReportRecord
from storage.repositories._dialect import dialect_name
from storage.repositories._fast import FastStatement, typed_parameters

# Statuses in which a report is still waiting for the service (FixMyStreet's "open" set).
OPEN_STATUSES = ("open", "confirmed", "investigating", "in_progress", "action_scheduled")
EARTH_RADIUS_M = 6_371_000.0
PHOTO_UNAVAILABLE = "unavailable"


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


def format_reference(report_id: int) -> str:
    """The public reference citizens quote, e.g. ``R-000123``."""
    return f"R-{report_id:06d}"


def _select_reports() -> Select[Report, str, dict[str, str]]:
    return select(Report, Category.code, Category.names).join(
        Category, Category.id == Report.category_id
    )


def _record(found: Row[Report, str, dict[str, str]]) -> ReportRecord:
    row, category_code, category_names = found[0], found[1], found[2]
    return ReportRecord(
        id=row.id,
        reference=row.reference or format_reference(row.id),
        citizen_id=row.citizen_id,
        category_id=row.category_id,
        category_code=category_code,
        category_names=dict(category_names),
        service_id=row.service_id,
        status=row.status,
        description=row.description,
        latitude=row.latitude,
        longitude=row.longitude,
        address=row.address,
        anonymous=row.anonymous,
        supporters=row.supporters,
        created_at=row.created_at,
        due_at=row.due_at,
    )


_REPORTS = cast(Table, Report.__table__)
_FOLLOWERS = cast(Table, ReportFollower.__table__)
_EVENTS = cast(Table, ReportEvent.__table__)
# The columns a new report is given, each from a typed parameter ``p_<name>``.
_NEW_REPORT_COLUMNS = (
    "citizen_id",
    "category_id",
    "service_id",
    "status",
    "description",
    "latitude",
    "longitude",
    "address",
    "anonymous",
    "language",
    "supporters",
    "created_at",
    "updated_at",
    "due_at",
    "area_id",
)
_NEW_REPORT_VALUES = typed_parameters(_REPORTS, _NEW_REPORT_COLUMNS)


def _create_sqlite() -> tuple[Any, Any, Any]:
    # The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so the next id is
    # the one SQLite itself would choose: the reference is written with the row.
    next_id = select(func.coalesce(func.max(_REPORTS.c.id), 0) + 1).scalar_subquery()
    report = (
        insert(_REPORTS)
        .values(id=next_id, reference=func.printf("R-%06d", next_id), **_NEW_REPORT_VALUES)
        .returning(_REPORTS.c.id, _REPORTS.c.reference)
    )
    follower = insert(_FOLLOWERS).values(
        report_id=bindparam("p_report_id"),
        citizen_id=bindparam("p_citizen_id"),
        created_at=bindparam("p_created_at", type_=_FOLLOWERS.c.created_at.type),
    )
    event = insert(_EVENTS).values(
        report_id=bindparam("p_report_id"),
        at=bindparam("p_created_at", type_=_EVENTS.c.at.type),
        kind="created",
        actor="citizen",
        to_status="open",
    )
    return report, follower, event


def _create_postgresql() -> Any:
    # One round trip: the report (its id from its sequence, the reference from the
    # id), its first follower and its first event, in data-modifying CTEs.
    sequence = select(
        func.nextval(func.pg_get_serial_sequence("reports", "id")).label("n")
    ).subquery("next_report")
    digits = sql_cast(sequence.c.n, String)
    reference = literal("R-") + func.lpad(digits, func.greatest(6, func.length(digits)), "0")
    report = (
        insert(_REPORTS)
        .from_select(
            ["id", "reference", *_NEW_REPORT_COLUMNS],
            select(sequence.c.n, reference, *_NEW_REPORT_VALUES.values()),
        )
        .returning(
            _REPORTS.c.id, _REPORTS.c.reference, _REPORTS.c.citizen_id, _REPORTS.c.created_at
        )
        .cte("new_report")
    )
    follower = (
        insert(_FOLLOWERS)
        .from_select(
            ["report_id", "citizen_id", "created_at"],
            select(report.c.id, report.c.citizen_id, report.c.created_at).where(
                report.c.citizen_id.is_not(None)
            ),
        )
        .cte("new_follower")
    )
    event = (
        insert(_EVENTS)
        .from_select(
            ["report_id", "at", "kind", "actor", "to_status"],
            select(
                report.c.id,
                report.c.created_at,
                literal("created"),
                literal("citizen"),
                literal("open"),
            ),
        )
        .cte("new_event")
    )
    return select(report.c.id, report.c.reference).add_cte(follower, event)


# Open reports of a category in a box: asked on every new pin (duplicates nearby).
_NEARBY_OPEN = FastStatement(
    select(
        _REPORTS.c.id,
        _REPORTS.c.reference,
        _REPORTS.c.citizen_id,
        _REPORTS.c.category_id,
        Category.code,
        Category.names,
        _REPORTS.c.service_id,
        _REPORTS.c.status,
        _REPORTS.c.description,
        _REPORTS.c.latitude,
        _REPORTS.c.longitude,
        _REPORTS.c.address,
        _REPORTS.c.anonymous,
        _REPORTS.c.supporters,
        _REPORTS.c.created_at,
        _REPORTS.c.due_at,
    )
    .join(Category, Category.id == _REPORTS.c.category_id)
    .where(
        _REPORTS.c.category_id == bindparam("p_category_id"),
        # Constants, not an expanding list: the statement compiles once.
        _REPORTS.c.status.in_([literal(status) for status in OPEN_STATUSES]),
        _REPORTS.c.latitude.between(bindparam("p_south"), bindparam("p_north")),
        _REPORTS.c.longitude.between(bindparam("p_west"), bindparam("p_east")),
    )
)


def _record_of_columns(row: Any) -> ReportRecord:
    return ReportRecord(
        id=row[0],
        reference=row[1] or format_reference(row[0]),
        citizen_id=row[2],
        category_id=row[3],
        category_code=row[4],
        category_names=dict(row[5]),
        service_id=row[6],
        status=row[7],
        description=row[8],
        latitude=row[9],
        longitude=row[10],
        address=row[11],
        anonymous=row[12],
        supporters=row[13],
        created_at=row[14],
        due_at=row[15],
    )


# Core statements built once: the report flow ends with one of them.
_CREATE_SQLITE = tuple(FastStatement(statement) for statement in _create_sqlite())
_CREATE_POSTGRESQL = FastStatement(_create_postgresql())


class ReportRepository:
    """Reads and writes reports, their photos, followers and history."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(
        self,
        *,
        citizen_id: int | None,
        category_id: int,
        service_id: int,
        description: str,
        latitude: float | None,
        longitude: float | None,
        address: str | None,
        anonymous: bool,
        language: str,
        now: datetime,
        due_at: datetime,
        area_id: int | None = None,
        category_code: str | None = None,
        category_names: Mapping[str, str] | None = None,
    ) -> ReportRecord:
        """Store a new open report and give it its public reference.

        The reporter follows it and its history starts with "created". Given the
        category's code and names, the record is built without reading the report back.
        """
        values = {
            "p_citizen_id": citizen_id,
            "p_category_id": category_id,
            "p_service_id": service_id,
            "p_status": "open",
            "p_description": description,
            "p_latitude": latitude,
            "p_longitude": longitude,
            "p_address": address,
            "p_anonymous": anonymous,
            "p_language": language,
            "p_supporters": 1,
            "p_created_at": now,
            "p_updated_at": now,
            "p_due_at": due_at,
            "p_area_id": area_id,
        }
        if dialect_name(self._session) == "postgresql":
            created = (await _CREATE_POSTGRESQL.execute(self._session, values)).one()
        else:
            report, follower, event = _CREATE_SQLITE
            created = (await report.execute(self._session, values)).one()
            common = {"p_report_id": created[0], "p_created_at": now}
            if citizen_id is not None:
                await follower.execute(self._session, {**common, "p_citizen_id": citizen_id})
            await event.execute(self._session, common)
        report_id, reference = created[0], created[1]
        if category_code is None or category_names is None:
            found = await self.by_id(report_id)
            assert found is not None
            return found
        return ReportRecord(
            id=report_id,
            reference=reference,
            citizen_id=citizen_id,
            category_id=category_id,
            category_code=category_code,
            category_names=dict(category_names),
            service_id=service_id,
            status="open",
            description=description,
            latitude=latitude,
            longitude=longitude,
            address=address,
            anonymous=anonymous,
            supporters=1,
            created_at=now.astimezone(UTC),
            due_at=due_at.astimezone(UTC),
        )

    async def by_id(self, report_id: int) -> ReportRecord | None:
        """The report with this id, if any."""
        result = await self._session.execute(_select_reports().where(Report.id == report_id))
        row = result.first()
        return None if row is None else _record(row)

    async def by_reference(self, reference: str) -> ReportRecord | None:
        """The report with this public reference (case-insensitive), if any."""
        result = await self._session.execute(
            _select_reports().where(Report.reference == reference.strip().upper())
        )
        row = result.first()
        return None if row is None else _record(row)

    async def add_photo(
        self,
        report_id: int,
        *,
        telegram_file_id: str,
        content_type: str,
        data: bytes | None,
        width: int | None,
        height: int | None,
        now: datetime,
    ) -> None:
        """Attach a photo (already stripped of its metadata) to a report."""
        self._session.add(
            ReportPhoto(
                report_id=report_id,
                telegram_file_id=telegram_file_id,
                content_type=content_type,
                data=data,
                width=width,
                height=height,
                created_at=now,
            )
        )

    async def photo_count(self, report_id: int) -> int:
        """How many photos a report has."""
        statement = select(func.count()).where(ReportPhoto.report_id == report_id)
        return int(await self._session.scalar(statement) or 0)

    async def nearby_open(
        self,
        *,
        category_id: int,
        latitude: float,
        longitude: float,
        radius_m: float,
        limit: int = 5,
    ) -> list[tuple[ReportRecord, float]]:
        """Open reports of the category within ``radius_m``, nearest first, with distances.

        A bounding box narrows the rows in SQL (both backends, indexable); the exact
        great-circle distance then decides.
        """
        dlat = math.degrees(radius_m / EARTH_RADIUS_M)
        cos_lat = max(math.cos(math.radians(latitude)), 1e-6)
        dlon = min(180.0, math.degrees(radius_m / (EARTH_RADIUS_M * cos_lat)))
        result = await _NEARBY_OPEN.execute(
            self._session,
            {
                "p_category_id": category_id,
                "p_south": latitude - dlat,
                "p_north": latitude + dlat,
                "p_west": longitude - dlon,
                "p_east": longitude + dlon,
            },
            # A read: on its own when nothing began yet (no BEGIN and COMMIT for it).
            begin=False,
        )
        found = []
        for row in result.all():
            report = _record_of_columns(row)
            assert report.latitude is not None and report.longitude is not None
            distance = distance_m(latitude, longitude, report.latitude, report.longitude)
            if distance <= radius_m:
                found.append((report, distance))
        found.sort(key=lambda item: (item[1], item[0].id))
        return found[:limit]

    async def follow(self, report_id: int, citizen_id: int, *, now: datetime) -> bool:
        """Add a follower ("me too"); the supporter count rises once per citizen."""
        exists = await self._session.scalar(
            select(func.count()).where(
                ReportFollower.report_id == report_id, ReportFollower.citizen_id == citizen_id
            )
        )
        if exists:
            return False
        self._session.add(
            ReportFollower(report_id=report_id, citizen_id=citizen_id, created_at=now)
        )
        await self._session.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(supporters=Report.supporters + 1, updated_at=now)
        )
        self._session.add(
            ReportEvent(report_id=report_id, at=now, kind="supported", actor="citizen")
        )
        await self._session.flush()
        return True

    async def for_citizen(self, citizen_id: int, *, limit: int = 20) -> list[ReportRecord]:
        """Reports the citizen made or follows, newest first."""
        followed = select(ReportFollower.report_id).where(ReportFollower.citizen_id == citizen_id)
        result = await self._session.execute(
            _select_reports()
            .where((Report.citizen_id == citizen_id) | Report.id.in_(followed))
            .order_by(Report.created_at.desc(), Report.id.desc())
            .limit(limit)
        )
        return [_record(row) for row in result.all()]

    async def history(self, report_id: int) -> list[ReportEventRecord]:
        """The report's events, oldest first."""
        rows = await self._session.scalars(
            select(ReportEvent)
            .where(ReportEvent.report_id == report_id)
            .order_by(ReportEvent.at, ReportEvent.id)
        )
        return [
            ReportEventRecord(
                at=row.at,
                kind=row.kind,
                actor=row.actor,
                from_status=row.from_status,
                to_status=row.to_status,
                note=row.note,
            )
            for row in rows
        ]

    async def is_follower(self, report_id: int, citizen_id: int) -> bool:
        """Whether the citizen made or follows the report."""
        count = await self._session.scalar(
            select(func.count()).where(
                and_(ReportFollower.report_id == report_id, ReportFollower.citizen_id == citizen_id)
            )
        )
        return bool(count)

    async def set_status(
        self, report_id: int, status: str, *, actor: str, note: str | None, now: datetime
    ) -> str | None:
        """Change the report's status and record it in its history.

        Returns the previous status; None when the report is unknown or already has
        this status (nothing changes). The row is locked first (PostgreSQL) so two
        changes at once are recorded one after the other.
        """
        current = await self._session.scalar(
            select(Report.status).where(Report.id == report_id).with_for_update()
        )
        if current is None or current == status:
            return None
        values: dict[str, Any] = {"status": status, "updated_at": now}
        if status == "fixed":
            values["fixed_at"] = now
        if status in OPEN_STATUSES:
            values.update(fixed_at=None, closed_at=None)
        elif status != "fixed":
            values["closed_at"] = now
        await self._session.execute(
            update(Report)
            .where(Report.id == report_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        self._session.add(
            ReportEvent(
                report_id=report_id,
                at=now,
                kind="status_changed",
                actor=actor,
                from_status=current,
                to_status=status,
                note=note,
            )
        )
        await self._session.flush()
        return current

    async def add_event(
        self, report_id: int, *, kind: str, actor: str, note: str | None, now: datetime
    ) -> None:
        """Record something that happened to a report without changing its status."""
        self._session.add(
            ReportEvent(report_id=report_id, at=now, kind=kind, actor=actor, note=note)
        )
        await self._session.flush()

    async def follower_ids(self, report_id: int) -> list[int]:
        """The citizens who follow the report (its reporter among them), oldest first."""
        rows = await self._session.scalars(
            select(ReportFollower.citizen_id)
            .where(ReportFollower.report_id == report_id)
            .order_by(ReportFollower.created_at, ReportFollower.citizen_id)
        )
        return list(rows)

    async def photos_to_fetch(self, limit: int = 20) -> list[tuple[int, str]]:
        """Photos whose bytes are not stored yet: (photo id, Telegram file id)."""
        result = await self._session.execute(
            select(ReportPhoto.id, ReportPhoto.telegram_file_id)
            .where(ReportPhoto.data.is_(None), ReportPhoto.content_type != PHOTO_UNAVAILABLE)
            .order_by(ReportPhoto.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result.all()]

    async def store_photo(
        self,
        photo_id: int,
        *,
        data: bytes | None,
        content_type: str,
        width: int | None,
        height: int | None,
    ) -> None:
        """Keep a photo's cleaned bytes (or mark it unavailable with ``data=None``)."""
        await self._session.execute(
            update(ReportPhoto)
            .where(ReportPhoto.id == photo_id)
            .values(data=data, content_type=content_type, width=width, height=height)
        )

    async def export_for_citizen(self, citizen_id: int) -> list[dict[str, Any]]:
        """The citizen's own reports and the ones they follow, as plain JSON-able data."""
        found = await self.for_citizen(citizen_id, limit=10_000)
        return [
            {
                "kind": "report" if report.citizen_id == citizen_id else "followed_report",
                "reference": report.reference,
                "category": report.category_code,
                "status": report.status,
                "description": report.description if report.citizen_id == citizen_id else None,
                "latitude": report.latitude if report.citizen_id == citizen_id else None,
                "longitude": report.longitude if report.citizen_id == citizen_id else None,
                "address": report.address if report.citizen_id == citizen_id else None,
                "anonymous": report.anonymous,
                "created_at": report.created_at.isoformat(),
            }
            for report in found
        ]

    async def detach_citizen(self, citizen_id: int) -> int:
        """Erasure: the citizen's reports stay, no longer linked to anyone; follows end."""
        await self._session.execute(
            delete(ReportFollower).where(ReportFollower.citizen_id == citizen_id)
        )
        result = await self._session.execute(
            update(Report).where(Report.citizen_id == citizen_id).values(citizen_id=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def photo_file_ids(self, report_id: int) -> list[str]:
        """The Telegram file ids of a report's photos, oldest first."""
        result = await self._session.scalars(
            select(ReportPhoto.telegram_file_id)
            .where(ReportPhoto.report_id == report_id)
            .order_by(ReportPhoto.id)
        )
        return list(result.all())

    async def for_services(
        self,
        service_ids: list[int] | None,
        *,
        statuses: tuple[str, ...] | None = None,
        category_code: str | None = None,
        overdue_at: datetime | None = None,
        area_id: int | None = None,
        limit: int = 10,
        offset: int = 0,
    ) -> list[ReportRecord]:
        """Reports of these services (all with None), newest first, filtered."""
        statement = _select_reports()
        if service_ids is not None:
            statement = statement.where(Report.service_id.in_(service_ids))
        if statuses:
            statement = statement.where(Report.status.in_(statuses))
        if category_code:
            statement = statement.where(Category.code == category_code)
        if area_id is not None:
            statement = statement.where(Report.area_id == area_id)
        if overdue_at is not None:
            statement = statement.where(
                Report.due_at < overdue_at, Report.status.in_(OPEN_STATUSES)
            )
        result = await self._session.execute(
            statement.order_by(Report.created_at.desc(), Report.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_record(row) for row in result.all()]
