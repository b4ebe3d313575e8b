"""Dialect-specific statement builders shared by the repositories."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def dialect_name(session: AsyncSession) -> str:
    """The name of the dialect the session talks to ("sqlite" or "postgresql")."""
    bind = session.get_bind()
    return bind.dialect.name


def insert_ignoring_conflicts(session: AsyncSession, entity: type[Any], index: list[str]) -> Any:
    """An INSERT that silently skips rows clashing on ``index`` (both dialects)."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(entity).on_conflict_do_nothing(index_elements=index)
    return sqlite.insert(entity).on_conflict_do_nothing(index_elements=index)
