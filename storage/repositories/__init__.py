"""Repositories: all SQL lives here. They share the unit of work's session and never commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.repositories.citizens import CitizenRepository
from storage.repositories.inbox import InboxRepository


class Repositories:
    """The repositories of one unit of work, sharing its session."""

    def __init__(self, session: AsyncSession) -> None:
        self.citizens = CitizenRepository(session)
        self.inbox = InboxRepository(session)


__all__ = ["CitizenRepository", "InboxRepository", "Repositories"]
