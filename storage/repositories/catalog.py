"""Services and categories: what citizens report and rate.

Reads come from the process's :class:`~storage.repositories._reference.ReferenceCache`
(kept up to 30 s, dropped when a change commits in this process); writes mark the
transaction so that it reads its own changes and drops the kept copy when it commits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Category, Service
from storage.records import CategoryRecord, ServiceRecord
from storage.repositories._reference import CATALOG, ReferenceCache, cached, mark_changed


@dataclass(frozen=True, slots=True)
class _Catalog:
    """Every service and category, as the bot reads them."""

    active_services: tuple[ServiceRecord, ...]
    services_by_code: dict[str, ServiceRecord]
    services_by_id: dict[int, ServiceRecord]
    active_categories: tuple[CategoryRecord, ...]
    categories_by_code: dict[str, CategoryRecord]


_SERVICES = select(Service.id, Service.code, Service.names, Service.active).order_by(
    Service.position, Service.id
)
_CATEGORIES = (
    select(
        Category.id,
        Category.code,
        Category.service_id,
        Service.code,
        Category.names,
        Category.target_days,
        Category.radius_m,
        Category.active,
    )
    .join(Service, Service.id == Category.service_id)
    .order_by(Category.position, Category.id)
)


class CatalogRepository:
    """Reads and writes services and categories."""

    def __init__(self, session: AsyncSession, cache: ReferenceCache | None = None) -> None:
        self._session = session
        self._cache = cache

    async def _load(self) -> _Catalog:
        services, active_services = [], []
        for row in (await self._session.execute(_SERVICES)).all():
            service = ServiceRecord(id=row[0], code=row[1], names=dict(row[2]))
            services.append(service)
            if row[3]:
                active_services.append(service)
        categories, active_categories = [], []
        for row in (await self._session.execute(_CATEGORIES)).all():
            category = CategoryRecord(
                id=row[0],
                code=row[1],
                service_id=row[2],
                service_code=row[3],
                names=dict(row[4]),
                target_days=row[5],
                radius_m=row[6],
            )
            categories.append(category)
            if row[7]:
                active_categories.append(category)
        return _Catalog(
            active_services=tuple(active_services),
            services_by_code={service.code: service for service in services},
            services_by_id={service.id: service for service in services},
            active_categories=tuple(active_categories),
            categories_by_code={category.code: category for category in categories},
        )

    async def _catalog(self) -> _Catalog:
        return await cached(self._cache, self._session, CATALOG, self._load)

    async def count_services(self) -> int:
        """How many services exist (zero on a fresh install)."""
        return int(await self._session.scalar(select(func.count()).select_from(Service)) or 0)

    async def services(self) -> list[ServiceRecord]:
        """Active services in display order."""
        return list((await self._catalog()).active_services)

    async def service_by_code(self, code: str) -> ServiceRecord | None:
        """The service with this code, if any."""
        return (await self._catalog()).services_by_code.get(code)

    async def service_by_id(self, service_id: int) -> ServiceRecord | None:
        """The service with this id, if any."""
        return (await self._catalog()).services_by_id.get(service_id)

    async def categories(self) -> list[CategoryRecord]:
        """Active categories in display order."""
        return list((await self._catalog()).active_categories)

    async def category_by_code(self, code: str) -> CategoryRecord | None:
        """The category with this code, if any."""
        return (await self._catalog()).categories_by_code.get(code)

    async def upsert_service(
        self, *, code: str, names: Mapping[str, str], position: int = 0
    ) -> int:
        """Create the service or update its names; returns its id."""
        mark_changed(self._session, CATALOG)
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
        mark_changed(self._session, CATALOG)
        row = await self._session.scalar(select(Category).where(Category.code == code))
        if row is None:
            row = Category(code=code, service_id=service_id, active=True)
            self._session.add(row)
        row.service_id, row.names = service_id, dict(names)
        row.target_days, row.radius_m = target_days, radius_m
        row.open311_code, row.position, row.active = open311_code, position, True
        await self._session.flush()
        return row.id
