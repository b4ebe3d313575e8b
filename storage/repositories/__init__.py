"""Repositories: all SQL lives here. They share the unit of work's session and never commit."""

from __future__ import annotations

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
    """The repositories of one unit of work, sharing its session."""

    def __init__(self, session: AsyncSession, cache: ReferenceCache | None = None) -> None:
        self.citizens = CitizenRepository(session)
        self.inbox = InboxRepository(session)
        self.catalog = CatalogRepository(session, cache)
        self.reports = ReportRepository(session)
        self.sessions = SessionRepository(session)
        self.flows = FlowRepository(session)
        self.volunteering = VolunteeringRepository(session)
        self.ratings = RatingRepository(session)
        self.outbox = OutboxRepository(session)
        self.followups = FollowUpRepository(session)
        self.staff = StaffRepository(session)
        self.digests = DigestRepository(session)
        self.digest_subscriptions = DigestSubscriptionRepository(session)
        self.areas = AreaRepository(session, cache)
        self.config = ConfigRepository(session)
        self.broadcasts = BroadcastRepository(session)


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
