"""The durable inbox: every update is stored before it is handled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import BigInteger, Table, and_, bindparam, delete, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import InboxUpdate
from storage.records import InboxStats, IncomingUpdate
from storage.repositories._dialect import dialect_name, insert_ignoring_conflicts
from storage.repositories._fast import FastStatement
from storage.repositories.citizens import lookup_joined_to, read_ahead
from storage.repositories.sessions import DEFERRABLE, defer_writes, take_deferred_write

PENDING, DONE, FAILED = "pending", "done", "failed"


_TABLE = cast(Table, InboxUpdate.__table__)


def _record_handled(insert: Any) -> Any:
    return (
        insert(_TABLE)
        .values(
            update_id=bindparam("p_update_id"),
            status=DONE,
            attempts=1,
            received_at=bindparam("p_now"),
            handled_at=bindparam("p_now"),
        )
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(_TABLE.c.update_id)
    )


def _store() -> Any:
    """SQLite: one row's insert, run for every row (an executemany)."""
    return (
        sqlite.insert(_TABLE)
        .values(
            update_id=bindparam("p_update_id"),
            chat_id=bindparam("p_chat_id"),
            user_id=bindparam("p_user_id"),
            payload=bindparam("p_payload", type_=_TABLE.c.payload.type),
            status=PENDING,
            attempts=0,
            received_at=bindparam("p_now"),
        )
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(_TABLE.c.update_id)
    )


# Core statements built once: every update runs one of them (a table's statement, not
# an entity's: SQLAlchemy's ORM bulk-insert machinery costs more than the insert).
_RECORD_HANDLED = {
    "sqlite": FastStatement(_record_handled(sqlite.insert)),
    "postgresql": FastStatement(_record_handled(postgresql.insert)),
}
_STORE = _store()


def _store_arrays() -> FastStatement:
    """PostgreSQL: every row in one statement, its columns as arrays (``unnest``): one
    prepared statement whatever the number of rows, run straight on the driver."""
    arrived = (
        func.unnest(
            bindparam("p_update_ids", type_=ARRAY(BigInteger)),
            bindparam("p_chat_ids", type_=ARRAY(BigInteger)),
            bindparam("p_user_ids", type_=ARRAY(BigInteger)),
            bindparam("p_payloads", type_=ARRAY(_TABLE.c.payload.type)),
        )
        .table_valued("update_id", "chat_id", "user_id", "payload")
        .render_derived(name="arrived")
    )
    columns = ["update_id", "chat_id", "user_id", "payload", "status", "attempts", "received_at"]
    rows = select(
        arrived.c.update_id,
        arrived.c.chat_id,
        arrived.c.user_id,
        arrived.c.payload,
        literal(PENDING),
        literal(0),
        bindparam("p_now", type_=_TABLE.c.received_at.type),
    )
    return FastStatement(
        postgresql.insert(_TABLE)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["update_id"])
        .returning(_TABLE.c.update_id)
    )


_STORE_ARRAYS = _store_arrays()
_CLOSING = (
    update(_TABLE)
    .where(_TABLE.c.update_id == bindparam("p_update_id"), _TABLE.c.status == PENDING)
    .values(
        status=DONE,
        payload=None,
        chat_id=None,
        user_id=None,
        handled_at=bindparam("p_now"),
        error=None,
        attempts=_TABLE.c.attempts + 1,
    )
)
_CLOSE = FastStatement(_CLOSING)


def _peeking(where: Any) -> FastStatement:
    """PostgreSQL: how many inbox rows match ``where`` (0 or 1), and the citizen's
    lookup, in one read."""
    found = select(func.count().label("found")).select_from(_TABLE).where(where).subquery()
    return FastStatement(lookup_joined_to(found))


def _settling(mark: Any, write: str | None) -> FastStatement:
    """PostgreSQL: ``mark`` (returning the update id when it marked it) and, when
    ``write`` is given, the dialog session's write of that kind (a key of
    ``DEFERRABLE``) only if it marked: one statement, atomic on its own. Its one value:
    1 if it marked, 0 if not."""
    marked = mark.cte("mark")
    statement = select(func.count()).select_from(marked)
    if write is not None:
        statement = statement.add_cte(
            DEFERRABLE[write](select(literal(1)).select_from(marked).exists()).cte("session_write")
        )
    return FastStatement(statement)


_ID = _TABLE.c.update_id == bindparam("p_update_id")
# By whether the update is new (not stored yet) or stored and pending.
_PEEK = {True: _peeking(_ID), False: _peeking(and_(_ID, _TABLE.c.status == PENDING))}
_MARK = {True: _record_handled(postgresql.insert), False: _CLOSING.returning(_TABLE.c.update_id)}
_SETTLE = {
    (new, write): _settling(_MARK[new], write)
    for new in (True, False)
    for write in (None, *DEFERRABLE)
}


class InboxRepository:
    """Stores, claims and closes incoming updates."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        # The mark open() left for settle(): whether the update is new, and the params.
        self._settling: tuple[bool, dict[str, Any]] | None = None

    async def open(
        self, update_id: int, now: datetime, *, new: bool, reading: int | None = None
    ) -> bool:
        """Begin handling an update in this transaction; False when it is known already.

        ``new``: the update is not stored yet (it is stored as handled, see
        :meth:`record_handled`); otherwise it is stored and pending (claimed and marked
        done, see :meth:`close`). Call :meth:`settle` once the handler is done, as the
        transaction's last statement: the mark commits with the handler's effects.

        On PostgreSQL, for a citizen's update (``reading``), the mark waits for
        :meth:`settle`: this reads whether the update is known, with the citizen (read
        ahead), on its own; :meth:`settle` marks the update and writes the citizen's
        dialog session (its save, start or end) in one statement, and re-checks the
        mark there. An update that
        changes nothing else then takes two round trips, no BEGIN and no COMMIT. If
        another instance handles the same update meanwhile, :meth:`settle` finds it
        marked and says so: the caller rolls back. Elsewhere this marks at once.
        """
        session = self._session
        if reading is None or dialect_name(session) != "postgresql":
            if new:
                return await self._record_handled(update_id, now)
            return await self.close(update_id, now)
        result = await _PEEK[new].execute(
            session, {"p_update_id": update_id, "telegram_id": reading}, begin=False
        )
        row = result.first()
        assert row is not None  # one row, whatever it found
        read_ahead(session, reading, row)
        if row[0] != (0 if new else 1):
            return False
        self._settling = (new, {"p_update_id": update_id, "p_now": now})
        defer_writes(session)
        return True

    async def settle(self) -> bool:
        """The mark :meth:`open` left waiting, if it did, with the dialog session's write
        left waiting (PostgreSQL); False when another transaction marked the update
        first (roll back). Run nothing in the transaction after it."""
        if self._settling is None:
            return True
        new, params = self._settling
        self._settling = None
        session = self._session
        if session.new or session.dirty or session.deleted:
            # The commit would flush them after the mark, perhaps in a transaction of
            # their own: they go first.
            await session.flush()
        write, written = take_deferred_write(session) or (None, {})
        # The write's time, if it has one, stands for the mark's too: the end of the
        # handling.
        result = await _SETTLE[(new, write)].execute(session, {**params, **written}, begin=False)
        return bool(result.scalar())

    async def store(self, updates: Sequence[IncomingUpdate], now: datetime) -> list[int]:
        """Insert the updates not seen before; return the ids that are new.

        A repeated ``update_id`` (a redelivery, a concurrent duplicate) is ignored,
        so it is handled at most once.
        """
        if not updates:
            return []
        if dialect_name(self._session) == "postgresql":
            params = {
                "p_update_ids": [item.update_id for item in updates],
                "p_chat_ids": [item.chat_id for item in updates],
                "p_user_ids": [item.user_id for item in updates],
                "p_payloads": [item.payload for item in updates],
                "p_now": now,
            }
            stored = await _STORE_ARRAYS.execute(self._session, params)
            return sorted(row[0] for row in stored.all())
        rows = [
            {
                "p_update_id": item.update_id,
                "p_chat_id": item.chat_id,
                "p_user_id": item.user_id,
                "p_payload": item.payload,
                "p_now": now,
            }
            for item in updates
        ]
        result = await self._session.execute(_STORE, rows)
        return sorted(result.scalars().all())

    async def record_handled(self, item: IncomingUpdate, now: datetime) -> bool:
        """Store an update as handled, in the transaction that handles it; False if known.

        For an update handled the moment it arrives: one statement instead of a
        store, a claim and a mark. Nothing that identifies the citizen is kept. On
        PostgreSQL a concurrent insert of the same id waits for this transaction and
        then finds the row, so a duplicate has no effect either way.
        """
        return await self._record_handled(item.update_id, now)

    async def _record_handled(self, update_id: int, now: datetime) -> bool:
        params = {"p_update_id": update_id, "p_now": now}
        result = await _RECORD_HANDLED[dialect_name(self._session)].execute(self._session, params)
        return result.scalar() is not None

    async def close(self, update_id: int, now: datetime) -> bool:
        """Claim a stored, pending update and mark it done, in one statement.

        Call it in the transaction that handles the update: the mark commits with the
        handler's effects or rolls back with them. False when the update is not
        pending (a duplicate, or another instance handled it). On PostgreSQL the row
        stays locked until the transaction ends, so a concurrent claimer waits and
        then finds it no longer pending. Only the update id stays, to recognise a
        repeated delivery.
        """
        result = await _CLOSE.execute(self._session, {"p_update_id": update_id, "p_now": now})
        return bool(result.rowcount)

    async def record_failed(self, item: IncomingUpdate, error: str, now: datetime) -> None:
        """Store an update whose handling raised before it was ever stored (payload kept).

        If the update is already there (a concurrent duplicate stored it), a pending
        row is set aside as failed instead.
        """
        statement = (
            insert_ignoring_conflicts(self._session, InboxUpdate, ["update_id"])
            .values(
                update_id=item.update_id,
                chat_id=item.chat_id,
                user_id=item.user_id,
                payload=item.payload,
                status=FAILED,
                attempts=1,
                error=error[:200],
                received_at=now,
                handled_at=now,
            )
            .returning(InboxUpdate.update_id)
        )
        result = await self._session.execute(statement)
        if result.scalar() is None:
            await self.mark_failed(item.update_id, error, now)

    async def claim(self, update_id: int) -> bool:
        """Take a pending update for handling in this transaction.

        On PostgreSQL the row stays locked until the transaction ends, so a
        concurrent claimer waits and then finds it no longer pending.
        """
        result = await self._session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id, InboxUpdate.status == PENDING)
            .values(attempts=InboxUpdate.attempts + 1)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_done(self, update_id: int, now: datetime) -> None:
        """Close a handled update and drop what identifies or quotes the citizen.

        Only the update id stays, to recognise a repeated delivery.
        """
        await self._session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id)
            .values(
                status=DONE, payload=None, chat_id=None, user_id=None, handled_at=now, error=None
            )
        )

    async def mark_failed(self, update_id: int, error: str, now: datetime) -> None:
        """Set aside an update whose handling raised; its payload is kept for a retry."""
        await self._session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.update_id == update_id, InboxUpdate.status == PENDING)
            .values(
                status=FAILED,
                error=error[:200],
                handled_at=now,
                attempts=InboxUpdate.attempts + 1,
            )
        )

    async def pending(self, limit: int = 10_000) -> list[IncomingUpdate]:
        """Updates stored but not handled (a crash or a stop came between), oldest first."""
        result = await self._session.execute(
            select(
                InboxUpdate.update_id, InboxUpdate.chat_id, InboxUpdate.user_id, InboxUpdate.payload
            )
            .where(InboxUpdate.status == PENDING)
            .order_by(InboxUpdate.update_id)
            .limit(limit)
        )
        return [
            IncomingUpdate(update_id=row[0], chat_id=row[1], user_id=row[2], payload=row[3] or {})
            for row in result.all()
        ]

    async def requeue_failed(self) -> int:
        """Make failed updates pending again (an operator's retry after a fix)."""
        result = await self._session.execute(
            update(InboxUpdate)
            .where(InboxUpdate.status == FAILED)
            .values(status=PENDING, error=None)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def purge_handled(self, before: datetime) -> int:
        """Forget handled updates older than ``before``; Telegram redelivers only recent ones."""
        result = await self._session.execute(
            delete(InboxUpdate).where(InboxUpdate.status == DONE, InboxUpdate.handled_at < before)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def stats(self) -> InboxStats:
        """Counts by state, for health checks and the CLI."""
        result = await self._session.execute(
            select(InboxUpdate.status, func.count()).group_by(InboxUpdate.status)
        )
        counts = {str(status): int(count) for status, count in result.all()}
        return InboxStats(
            pending=counts.get(PENDING, 0), done=counts.get(DONE, 0), failed=counts.get(FAILED, 0)
        )

    async def forget_user(self, telegram_id: int) -> int:
        """Erasure: drop a user's failed updates (handled ones keep nothing of them).

        Pending ones are left to run: they came after the request and are cleared
        when handled.
        """
        result = await self._session.execute(
            delete(InboxUpdate).where(
                InboxUpdate.user_id == telegram_id, InboxUpdate.status == FAILED
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def redact_failed(self, old: str, new: str) -> int:
        """Erasure: ``new`` for ``old`` in every string of the failed updates' payloads
        (another person's update may quote the citizen: a manager's button press
        carries the card that showed the reporter's name); how many rows changed."""
        rows = await self._session.execute(
            select(InboxUpdate.update_id, InboxUpdate.payload).where(InboxUpdate.status == FAILED)
        )
        changed = 0
        for update_id, payload in rows.all():
            redacted = _replaced(payload, old, new)
            if redacted != payload:
                await self._session.execute(
                    update(InboxUpdate)
                    .where(InboxUpdate.update_id == update_id)
                    .values(payload=redacted)
                )
                changed += 1
        return changed


def _replaced(value: Any, old: str, new: str) -> Any:
    """``value`` with ``new`` for ``old`` in every string it holds, however deep."""
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {key: _replaced(item, old, new) for key, item in value.items()}
    if isinstance(value, list):
        return [_replaced(item, old, new) for item in value]
    return value
