"""Dialect-specific statement builders shared by the repositories."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, exists, func, literal, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
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


def claim_update(
    session: AsyncSession,
    entity: Any,
    *,
    claimable: ColumnElement[bool],
    order_by: Sequence[Any],
    limit: int,
    values: Mapping[str, Any],
    returning: Sequence[Any],
) -> Any:
    """An UPDATE that claims up to ``limit`` rows of ``entity`` (by ``id``) for one worker.

    On PostgreSQL the candidates are selected ``FOR UPDATE SKIP LOCKED``: a row
    another claimer is taking is skipped, not waited for. On SQLite the transaction
    already holds the write lock, and ``claimable`` is checked again in the UPDATE
    itself (compare-and-set), so a row is taken once however many claimers race.
    """
    candidates = select(entity.id).where(claimable).order_by(*order_by).limit(limit)
    if dialect_name(session) == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    chosen = candidates.cte("chosen")
    return (
        update(entity)
        .where(entity.id.in_(select(chosen.c.id)), claimable)
        .values(**values)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    )


async def serialize(session: AsyncSession, key: int) -> None:
    """Make transactions that call this with the same ``key`` take turns until they end.

    A transaction-scoped advisory lock on PostgreSQL; SQLite has one writer at a time
    already (BEGIN IMMEDIATE), so nothing is needed there.
    """
    if dialect_name(session) == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(key)))


def items_listed(session: AsyncSession, column: Any) -> ColumnElement[bool]:
    """True when a ``{"items": [...]}`` JSON column lists anything."""
    if dialect_name(session) == "postgresql":
        items = type_coerce(column, JSONB)["items"]
        return func.coalesce(func.jsonb_array_length(items), 0) > 0
    return func.coalesce(func.json_array_length(column, "$.items"), 0) > 0


def items_shared(session: AsyncSession, column: Any, values: Sequence[str]) -> ColumnElement[bool]:
    """True when a ``{"items": [...]}`` JSON column lists one of ``values``."""
    if dialect_name(session) == "postgresql":
        shared: ColumnElement[bool] = type_coerce(column, JSONB)["items"].has_any(
            postgresql.array(list(values))
        )
        return shared
    each = func.json_each(column, "$.items").table_valued("value")
    return exists(select(literal(1)).select_from(each).where(each.c.value.in_(list(values))))
