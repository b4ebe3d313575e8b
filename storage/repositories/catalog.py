"""Services and categories: what citizens report and rate."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Category, Service
from storage.records import CategoryRecord, ServiceRecord


class CatalogRepository:
    """Reads and writes services and categories."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def count_services(self) -> int:
        """How many services exist (zero on a fresh install)."""
        return int(await self._session.scalar(select(func.count()).select_from(Service)) or 0)

    async def services(self) -> list[ServiceRecord]:
        """Active services in display order."""
        rows = await self._session.scalars(
            select(Service).where(Service.active.is_(True)).order_by(Service.position, Service.id)
        )
        return [ServiceRecord(id=s.id, code=s.code, names=dict(s.names)) for s in rows]

    async def service_by_code(self, code: str) -> ServiceRecord | None:
        """The service with this code, if any."""
        row = await self._session.scalar(select(Service).where(Service.code == code))
        return (
            None if row is None else ServiceRecord(id=row.id, code=row.code, names=dict(row.names))
        )

    async def service_by_id(self, service_id: int) -> ServiceRecord | None:
        """The service with this id, if any."""
        row = await self._session.get(Service, service_id)
        return (
            None if row is None else ServiceRecord(id=row.id, code=row.code, names=dict(row.names))
        )

    @staticmethod
    def _category(row: Category, service_code: str) -> CategoryRecord:
        return CategoryRecord(
            id=row.id,
            code=row.code,
            service_id=row.service_id,
            service_code=service_code,
            names=dict(row.names),
            target_days=row.target_days,
            radius_m=row.radius_m,
        )

    async def categories(self) -> list[CategoryRecord]:
        """Active categories in display order."""
        result = await self._session.execute(
            select(Category, Service.code)
            .join(Service, Service.id == Category.service_id)
            .where(Category.active.is_(True))
            .order_by(Category.position, Category.id)
        )
        return [self._category(row[0], row[1]) for row in result.all()]

    async def category_by_code(self, code: str) -> CategoryRecord | None:
        """The category with this code, if any."""
        result = await self._session.execute(
            select(Category, Service.code)
            .join(Service, Service.id == Category.service_id)
            .where(Category.code == code)
        )
        row = result.first()
        return None if row is None else self._category(row[0], row[1])

    async def upsert_service(
        self, *, code: str, names: Mapping[str, str], position: int = 0
    ) -> int:
        """Create the service or update its names; returns its id."""
        row = await self._session.scalar(select(Service).where(Service.code == code))
        if row is None:
            row = Service(code=code, names=dict(names), active=True, position=position)
            self._session.add(row)
        else:
            row.names, row.position, row.active = dict(names), position, True
        await self._session.flush()
        return row.id

    async def upsert_category(
        self,
        *,
        code: str,
        service_id: int,
        names: Mapping[str, str],
        target_days: int,
        radius_m: int,
        open311_code: str | None = None,
        position: int = 0,
    ) -> int:
        """Create the category or update it; returns its id."""
        row = await self._session.scalar(select(Category).where(Category.code == code))
        if row is None:
            row = Category(code=code, service_id=service_id, active=True)
            self._session.add(row)
        row.service_id, row.names = service_id, dict(names)
        row.target_days, row.radius_m = target_days, radius_m
        row.open311_code, row.position, row.active = open311_code, position, True
        await self._session.flush()
        return row.id
