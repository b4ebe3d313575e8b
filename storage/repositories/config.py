"""Configuration administrators edit as files: the catalogue as a whole, and stored
documents (the report state table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Category, Citizen, ConfigDocument, Rating, Report, Service, StaffRole
from storage.repositories._reference import CATALOG, mark_changed
from storage.repositories.staff import MANAGER


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDocumentRecord:
    """A stored configuration document and who replaced it last."""

    name: str
    source: str
    revision: int
    author: str
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRow:
    """A service with everything the catalogue file holds, active or not."""

    id: int
    code: str
    names: dict[str, str]
    active: bool
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryRow:
    """A category with everything the catalogue file holds, active or not."""

    id: int
    code: str
    service_id: int
    names: dict[str, str]
    target_days: int
    radius_m: int
    open311_code: str | None
    active: bool
    position: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ManagerRole:
    """A manager role: whose, for which service."""

    service_id: int
    citizen_id: int
    telegram_id: int | None


class ConfigRepository:
    """Reads and writes configuration documents and the whole catalogue."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def document(self, name: str) -> ConfigDocumentRecord | None:
        """The stored document with this name, if any."""
        row = await self._session.get(ConfigDocument, name)
        if row is None:
            return None
        return ConfigDocumentRecord(
            name=row.name,
            source=row.source,
            revision=row.revision,
            author=row.author,
            updated_at=row.updated_at,
        )

    async def save_document(self, name: str, source: str, *, author: str, now: datetime) -> int:
        """Replace the document (locked first); returns its new revision number."""
        row = await self._session.get(ConfigDocument, name, with_for_update=True)
        if row is None:
            row = ConfigDocument(
                name=name, source=source, revision=1, author=author, updated_at=now
            )
            self._session.add(row)
        else:
            row.source, row.revision, row.author, row.updated_at = (
                source,
                row.revision + 1,
                author,
                now,
            )
        await self._session.flush()
        return row.revision

    async def delete_document(self, name: str) -> bool:
        """Remove a stored document; False when there was none."""
        result = await self._session.execute(
            delete(ConfigDocument).where(ConfigDocument.name == name)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def services(self) -> list[ServiceRow]:
        """Every service, active or not, in display order."""
        rows = await self._session.scalars(select(Service).order_by(Service.position, Service.id))
        return [
            ServiceRow(
                id=row.id,
                code=row.code,
                names=dict(row.names),
                active=row.active,
                position=row.position,
            )
            for row in rows
        ]

    async def categories(self) -> list[CategoryRow]:
        """Every category, active or not, in display order."""
        rows = await self._session.scalars(
            select(Category).order_by(Category.position, Category.id)
        )
        return [
            CategoryRow(
                id=row.id,
                code=row.code,
                service_id=row.service_id,
                names=dict(row.names),
                target_days=row.target_days,
                radius_m=row.radius_m,
                open311_code=row.open311_code,
                active=row.active,
                position=row.position,
            )
            for row in rows
        ]

    async def save_service(self, service_id: int | None, values: Mapping[str, Any]) -> int:
        """Create a service (``service_id`` None) or update one; returns its id."""
        mark_changed(self._session, CATALOG)
        row = None if service_id is None else await self._session.get(Service, service_id)
        if row is None:
            row = Service(**values)
            self._session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
        await self._session.flush()
        return row.id

    async def save_category(self, category_id: int | None, values: Mapping[str, Any]) -> int:
        """Create a category (``category_id`` None) or update one; returns its id."""
        mark_changed(self._session, CATALOG)
        row = None if category_id is None else await self._session.get(Category, category_id)
        if row is None:
            row = Category(**values)
            self._session.add(row)
        else:
            for key, value in values.items():
                setattr(row, key, value)
        await self._session.flush()
        return row.id

    async def category_referenced(self, category_id: int) -> bool:
        """Whether a report names the category (it may then only be deactivated)."""
        return bool(
            await self._session.scalar(select(exists().where(Report.category_id == category_id)))
        )

    async def service_referenced(self, service_id: int) -> bool:
        """Whether a report or a rating names the service (it may then only be
        deactivated)."""
        for statement in (
            exists().where(Report.service_id == service_id),
            exists().where(Rating.service_id == service_id),
        ):
            if await self._session.scalar(select(statement)):
                return True
        return False

    async def delete_category(self, category_id: int) -> None:
        """Remove a category nothing refers to."""
        mark_changed(self._session, CATALOG)
        await self._session.execute(delete(Category).where(Category.id == category_id))

    async def delete_service(self, service_id: int) -> None:
        """Remove a service nothing refers to (its manager roles go with it)."""
        mark_changed(self._session, CATALOG)
        await self._session.execute(delete(Service).where(Service.id == service_id))

    async def manager_roles(self) -> list[ManagerRole]:
        """Every manager role, with the manager's Telegram id (None once erased)."""
        result = await self._session.execute(
            select(StaffRole.service_id, StaffRole.citizen_id, Citizen.telegram_id)
            .join(Citizen, Citizen.id == StaffRole.citizen_id)
            .where(StaffRole.role == MANAGER, StaffRole.service_id.is_not(None))
            .order_by(StaffRole.service_id, Citizen.telegram_id)
        )
        return [
            ManagerRole(service_id=row[0], citizen_id=row[1], telegram_id=row[2])
            for row in result.all()
            if row[0] is not None
        ]

    async def revoke_manager(self, citizen_id: int, service_id: int) -> bool:
        """Take away one manager role; False when it was not held."""
        result = await self._session.execute(
            delete(StaffRole).where(
                StaffRole.citizen_id == citizen_id,
                StaffRole.role == MANAGER,
                StaffRole.service_id == service_id,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]
