"""Repositories: all SQL lives here. They share the unit of work's session and never commit."""

from __future__ import annotations

from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession

from storage.repositories._reference import ReferenceCache
from storage.repositories.areas import AreaRepository
from storage.repositories.broadcasts import BroadcastRepository
from storage.repositories.catalog import CatalogRepository
from storage.repositories.citizens import CitizenRepository
from storage.repositories.config import ConfigRepository
from storage.repositories.digest_subscriptions import DigestSubscriptionRepository
from storage.repositories.digests import DigestRepository
from storage.repositories.flows import FlowRepository
from storage.repositories.followups import FollowUpRepository
from storage.repositories.inbox import InboxRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.ratings import RatingRepository
from storage.repositories.reports import ReportRepository
from storage.repositories.sessions import SessionRepository
from storage.repositories.staff import StaffRepository
from storage.repositories.volunteering import VolunteeringRepository


class Repositories:
    """The repositories of one unit of work, sharing its session.

    Each is built when first used: an update uses three or four of them.
    """

    def __init__(self, session: AsyncSession, cache: ReferenceCache | None = None) -> None:
        self._session = session
        self._cache = cache

    @cached_property
    def citizens(self) -> CitizenRepository:
        """The citizens repository."""
        return CitizenRepository(self._session)

    @cached_property
    def inbox(self) -> InboxRepository:
        """The inbox repository."""
        return InboxRepository(self._session)

    @cached_property
    def catalog(self) -> CatalogRepository:
        """The catalog repository."""
        return CatalogRepository(self._session, self._cache)

    @cached_property
    def reports(self) -> ReportRepository:
        """The reports repository."""
        return ReportRepository(self._session)

    @cached_property
    def sessions(self) -> SessionRepository:
        """The sessions repository."""
        return SessionRepository(self._session)

    @cached_property
    def flows(self) -> FlowRepository:
        """The flows repository."""
        return FlowRepository(self._session)

    @cached_property
    def volunteering(self) -> VolunteeringRepository:
        """The volunteering repository."""
        return VolunteeringRepository(self._session)

    @cached_property
    def ratings(self) -> RatingRepository:
        """The ratings repository."""
        return RatingRepository(self._session)

    @cached_property
    def outbox(self) -> OutboxRepository:
        """The outbox repository."""
        return OutboxRepository(self._session)

    @cached_property
    def followups(self) -> FollowUpRepository:
        """The followups repository."""
        return FollowUpRepository(self._session)

    @cached_property
    def staff(self) -> StaffRepository:
        """The staff repository."""
        return StaffRepository(self._session)

    @cached_property
    def digests(self) -> DigestRepository:
        """The digests repository."""
        return DigestRepository(self._session)

    @cached_property
    def digest_subscriptions(self) -> DigestSubscriptionRepository:
        """The digest subscriptions repository."""
        return DigestSubscriptionRepository(self._session)

    @cached_property
    def areas(self) -> AreaRepository:
        """The areas repository."""
        return AreaRepository(self._session, self._cache)

    @cached_property
    def config(self) -> ConfigRepository:
        """The config repository."""
        return ConfigRepository(self._session)

    @cached_property
    def broadcasts(self) -> BroadcastRepository:
        """The broadcasts repository."""
        return BroadcastRepository(self._session)


__all__ = [
    "AreaRepository",
    "BroadcastRepository",
    "CatalogRepository",
    "CitizenRepository",
    "ConfigRepository",
    "DigestRepository",
    "DigestSubscriptionRepository",
    "FlowRepository",
    "FollowUpRepository",
    "InboxRepository",
    "OutboxRepository",
    "RatingRepository",
    "ReferenceCache",
    "ReportRepository",
    "Repositories",
    "SessionRepository",
    "StaffRepository",
    "VolunteeringRepository",
]
