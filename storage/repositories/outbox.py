"""The outbox: proactive messages waiting for the sender, and the sender's bookkeeping.

A row's life::

    pending --claim--> claimed --attempt--> sending --> sent | failed | dropped
       ^                  |                    |
       |   (released)     |                    +--> retry (5xx, network, in doubt)
       +------------------+                           |
                                   retry --claim--> claimed ...

``claimed`` rows are held by one worker (``claimed_by``) until ``lease_until`` and
were not handed to Telegram yet: releasing them is always safe. ``sending`` rows
were recorded *before* the Bot API call; only the returned message id turns them
into ``sent``. A ``sending`` row whose lease ran out is therefore "in doubt": it
may or may not have reached the citizen. It is resent once (``last_error`` starts
with :data:`IN_DOUBT`, which later errors keep), and a row already in doubt that is
left unconfirmed again is failed rather than sent a third time.

Per chat, messages go out in their due order: a chat with a ``claimed``,
``sending`` or ``retry`` row is *busy*, and none of its other rows is claimed until
that one is settled. A sent row's ``not_before`` is moved to when its chat may get
the next message (Telegram's per-chat limit), and until then other workers leave
the chat alone: their own limiters never saw that send.

All SQL here walks ``ix_outbox_messages_due`` (status, not_before, priority, id):
claims read one status range in index order, and the busy chats are the short
claimed/sending/retry ranges plus the sent rows whose ``not_before`` lies ahead.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter, UnaryExpression
from sqlalchemy.sql.operators import custom_op

from storage.models import Citizen, OutboxMessage
from storage.repositories._dialect import dialect_name, insert_ignoring_conflicts, serialize
from storage.repositories._fast import FastStatement, typed_parameters

PENDING = "pending"
CLAIMED = "claimed"
SENDING = "sending"
RETRY = "retry"
SENT = "sent"
FAILED = "failed"
DROPPED = "dropped"

STATUSES = (PENDING, CLAIMED, SENDING, RETRY, SENT, FAILED, DROPPED)
# Statuses that hold a chat: nothing else of that chat is claimed meanwhile.
BUSY = (CLAIMED, SENDING, RETRY)
# Statuses whose rows are still meant to be sent (and can be dropped).
UNSENT = (PENDING, CLAIMED, RETRY)

IN_DOUBT = "in doubt"
"""Prefix of ``last_error`` for a message that may have been sent already."""

ERROR_LENGTH = 200
INSERT_CHUNK = 1000  # rows per bulk INSERT

# Claims on PostgreSQL take this transaction-scoped advisory lock first. SKIP
# LOCKED alone would let two instances, each not yet seeing the other's
# uncommitted claim, take two different rows of one chat and send them at once.
CLAIM_LOCK_KEY = 0x0B7B0C1A1


_T: Table = OutboxMessage.__table__  # type: ignore[assignment]
# The claim's subqueries read the table under these names; built once, not per claim.
_HOLDERS, _RESTING = _T.alias("holders"), _T.alias("resting")


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxRecord:
    """One outbox row as plain data."""

    id: int
    chat_id: int
    citizen_id: int | None
    kind: str
    method: str
    payload: dict[str, Any]
    priority: int
    status: str
    not_before: datetime
    attempts: int
    last_error: str | None
    lease_until: datetime | None
    claimed_by: str | None
    idempotency_key: str | None
    broadcast_id: int | None
    created_at: datetime
    attempted_at: datetime | None
    sent_at: datetime | None
    telegram_message_id: int | None

    @property
    def in_doubt(self) -> bool:
        """True when an earlier attempt may have reached Telegram unconfirmed."""
        return (self.last_error or "").startswith(IN_DOUBT)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedBatch:
    """What one claim took: messages to send (in due order) and rows dropped instead."""

    messages: list[OutboxRecord]
    dropped: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    """Rows taken back from workers whose lease ran out (or from this worker's past life).

    ``released``: claimed but never attempted, queued again. ``in_doubt``: attempted
    and never confirmed, queued for one resend. ``abandoned``: in doubt a second
    time, failed without a resend.
    """

    released: list[int]
    in_doubt: list[int]
    abandoned: list[int]


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxStats:
    """Counts by status, how many rows are due now and since when the oldest waits."""

    counts: dict[str, int]
    due: int
    oldest_due: datetime | None

    def count(self, status: str) -> int:
        """Rows in ``status``."""
        return self.counts.get(status, 0)


_COLUMNS = tuple(column.name for column in _T.c)


def _enqueue(insert: Any) -> Any:
    # A table's statement built once, not an entity's per call: SQLAlchemy's ORM
    # insert machinery and a new statement's cache key cost ten times the insert.
    return (
        insert(_T)
        .values(
            chat_id=bindparam("p_chat_id", type_=_T.c.chat_id.type),
            citizen_id=bindparam("p_citizen_id", type_=_T.c.citizen_id.type),
            kind=bindparam("p_kind", type_=_T.c.kind.type),
            method=bindparam("p_method", type_=_T.c.method.type),
            payload=bindparam("p_payload", type_=_T.c.payload.type),
            priority=bindparam("p_priority", type_=_T.c.priority.type),
            status=PENDING,
            not_before=bindparam("p_not_before", type_=_T.c.not_before.type),
            attempts=0,
            idempotency_key=bindparam("p_idempotency_key", type_=_T.c.idempotency_key.type),
            broadcast_id=bindparam("p_broadcast_id", type_=_T.c.broadcast_id.type),
            created_at=bindparam("p_now", type_=_T.c.created_at.type),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(_T.c.id)
    )


_ENQUEUE = {
    "sqlite": FastStatement(_enqueue(sqlite.insert)),
    "postgresql": FastStatement(_enqueue(postgresql.insert)),
}


def _record(row: Row[Any]) -> OutboxRecord:
    # Plain tuple access: a claim turns hundreds of rows into records at a time.
    values = dict(zip(_COLUMNS, row, strict=True))
    values["payload"] = dict(values["payload"] or {})
    return OutboxRecord(**values)


def _due_order(record: OutboxRecord) -> tuple[datetime, int, int]:
    return record.not_before, record.priority, record.id


def _error_keeping_doubt(error: str) -> Any:
    """``last_error = error``, but a row in doubt stays recognisably in doubt."""
    return case(
        (_T.c.last_error.like(IN_DOUBT + "%"), f"{IN_DOUBT}; {error}"[:ERROR_LENGTH]),
        else_=error[:ERROR_LENGTH],
    )


def _attempted_by(worker_id: str | BindParameter[Any], status: Any = _T.c.status) -> Any:
    """Rows this worker is sending, and rows lease recovery queued for an in-doubt resend
    that no one claimed yet (the confirmation of the first attempt came in time)."""
    return or_(
        and_(status == SENDING, _T.c.claimed_by == worker_id),
        and_(status == RETRY, _T.c.last_error.like(IN_DOUBT + "%")),
    )


def _lease_expired(now: datetime, worker_id: str | None, leased_before: datetime | None) -> Any:
    expired = or_(_T.c.lease_until.is_(None), _T.c.lease_until < now)
    if worker_id is None:
        return expired
    own = _T.c.claimed_by == worker_id
    if leased_before is not None:
        own = and_(own, _T.c.lease_until <= leased_before)
    return or_(expired, own)


# Built once too: every update whose replies are kept runs both.
_START_SENDING = insert(_T).returning(_T.c.id, sort_by_parameter_order=True)
_SENDING_COLUMNS = (
    "chat_id",
    "citizen_id",
    "kind",
    "method",
    "payload",
    "priority",
    "status",
    "not_before",
    "attempts",
    "claimed_by",
    "lease_until",
    "created_at",
    "attempted_at",
)
# Most updates keep one reply: its row in one statement of its own.
_START_SENDING_ONE = FastStatement(
    insert(_T).values(typed_parameters(_T, _SENDING_COLUMNS, prefix="")).returning(_T.c.id)
)
_DIALECTS = ("sqlite", "postgresql")
_WORKER = bindparam("p_worker_id", type_=_T.c.claimed_by.type)
_NOW = bindparam("p_now", type_=_T.c.not_before.type)


def _status(dialect: str) -> Any:
    """The status column; on SQLite ``+status``, which no index serves, so that the rows
    are found by their listed ids. Without statistics SQLite's planner preferred the due
    index's status ranges and tested every row there against the whole list."""
    if dialect == "postgresql":
        return _T.c.status
    return UnaryExpression(_T.c.status, operator=custom_op("+"), type_=_T.c.status.type)


def _listed(dialect: str) -> Any:
    """``id`` is one of the list parameter ``p_ids``, with the primary key the way in.

    One parameter whatever the list's length, so the statement compiles once and runs
    as a :class:`FastStatement`: a JSON array walked by ``json_each`` on SQLite, an
    array joined with ``unnest`` on PostgreSQL (see :meth:`OutboxRepository._ids` for
    why not ``IN``).
    """
    if dialect == "postgresql":
        picked = (
            func.unnest(bindparam("p_ids", type_=ARRAY(BigInteger)))
            .table_valued("id")
            .render_derived(name="picked")
        )
        return _T.c.id == picked.c.id
    listed = func.json_each(bindparam("p_ids", type_=JSON)).table_valued("value")
    return _T.c.id.in_(select(listed.c.value))


def _finish_sent(dialect: str) -> FastStatement:
    return FastStatement(
        delete(_T).where(_listed(dialect), _attempted_by(_WORKER, _status(dialect)))
    )


def _mark_attempts(dialect: str) -> FastStatement:
    return FastStatement(
        update(_T)
        .where(_listed(dialect), _status(dialect) == CLAIMED, _T.c.claimed_by == _WORKER)
        .values(
            status=SENDING,
            attempts=_T.c.attempts + 1,
            attempted_at=_NOW,
            lease_until=bindparam("p_lease_until", type_=_T.c.lease_until.type),
        )
        .returning(_T.c.id)
    )


def _mark_sent(dialect: str) -> FastStatement:
    """Sent rows get Telegram's message ids: on PostgreSQL two arrays (``p_ids``,
    ``p_message_ids``) joined to the rows, on SQLite one JSON array of pairs
    (``p_sent``), read once (a join of two ``json_each`` would scan one per row)."""
    if dialect == "postgresql":
        numbered: Any = (
            func.unnest(
                bindparam("p_ids", type_=ARRAY(BigInteger)),
                bindparam("p_message_ids", type_=ARRAY(BigInteger)),
            )
            .table_valued("row_id", "message_id")
            .render_derived(name="numbered")
        )
    else:
        pairs = func.json_each(bindparam("p_sent", type_=JSON)).table_valued("value")
        numbered = select(
            func.json_extract(pairs.c.value, "$[0]").label("row_id"),
            func.json_extract(pairs.c.value, "$[1]").label("message_id"),
        ).subquery("numbered")
    due = _T.c.not_before.type
    return FastStatement(
        update(_T)
        .where(_T.c.id == numbered.c.row_id, _attempted_by(_WORKER, _status(dialect)))
        .values(
            status=SENT,
            sent_at=_NOW,
            # When the chat may get its next message (other workers respect it).
            not_before=case(
                (_T.c.chat_id < 0, bindparam("p_group_due", type_=due)),
                else_=bindparam("p_chat_due", type_=due),
            ),
            lease_until=None,
            telegram_message_id=numbered.c.message_id,
        )
        .returning(_T.c.id)
    )


_FINISH_SENT = {dialect: _finish_sent(dialect) for dialect in _DIALECTS}
_MARK_ATTEMPTS = {dialect: _mark_attempts(dialect) for dialect in _DIALECTS}
_MARK_SENT = {dialect: _mark_sent(dialect) for dialect in _DIALECTS}


class OutboxRepository:
    """Queues messages and keeps the sender's claims, attempts and outcomes."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _ids(self, ids: Sequence[int]) -> Any:
        """``id IN ids``, written so that the primary key is always the way in.

        On PostgreSQL the ids are joined as an array: with ``id IN (...) AND status
        = ...`` and statistics not yet refreshed after a large broadcast was queued,
        the planner walked the whole status range of the due index instead,
        checking each row against every id (1.5 s for 1,000 rows of 100,000).
        """
        if dialect_name(self._session) != "postgresql":
            return _T.c.id.in_(list(ids))
        picked = (
            func.unnest(literal(list(ids), ARRAY(BigInteger)))
            .table_valued("id")
            .render_derived(name="picked")
        )
        return _T.c.id == picked.c.id

    async def enqueue(
        self,
        *,
        chat_id: int,
        citizen_id: int | None,
        kind: str,
        method: str,
        payload: dict[str, Any],
        now: datetime,
        priority: int = 100,
        not_before: datetime | None = None,
        idempotency_key: str | None = None,
        broadcast_id: int | None = None,
    ) -> int | None:
        """Queue one message; None when a message with the same idempotency key exists."""
        result = await _ENQUEUE[dialect_name(self._session)].execute(
            self._session,
            {
                "p_chat_id": chat_id,
                "p_citizen_id": citizen_id,
                "p_kind": kind,
                "p_method": method,
                "p_payload": payload,
                "p_priority": priority,
                "p_not_before": not_before or now,
                "p_idempotency_key": idempotency_key,
                "p_broadcast_id": broadcast_id,
                "p_now": now,
            },
        )
        new_id = result.scalar()
        return None if new_id is None else int(new_id)

    async def enqueue_paced(
        self,
        recipients: Sequence[tuple[int, int]],
        *,
        kind: str,
        method: str,
        payload: Mapping[str, Any],
        key_prefix: str,
        now: datetime,
        interval: timedelta,
        priority: int = 100,
        broadcast_id: int | None = None,
    ) -> int:
        """Queue one message for each (citizen id, chat id), ``interval`` apart.

        Each row's ``not_before`` is its turn at that pace, so messages decided later
        slot in between instead of waiting behind all of them. Rows are keyed
        ``key_prefix:citizen id``: queueing the same again adds nothing. Returns how
        many rows were offered.
        """
        rows = [
            {
                "chat_id": chat_id,
                "citizen_id": citizen_id,
                "kind": kind,
                "method": method,
                "payload": {**payload, "chat_id": chat_id},
                "priority": priority,
                "status": PENDING,
                "not_before": now + interval * index,
                "attempts": 0,
                "idempotency_key": f"{key_prefix}:{citizen_id}",
                "broadcast_id": broadcast_id,
                "created_at": now,
            }
            for index, (citizen_id, chat_id) in enumerate(recipients)
        ]
        statement = insert_ignoring_conflicts(self._session, OutboxMessage, ["idempotency_key"])
        for start in range(0, len(rows), INSERT_CHUNK):
            await self._session.execute(statement, rows[start : start + INSERT_CHUNK])
        return len(rows)

    # --- the sender's side -------------------------------------------------------------

    async def start_sending(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        worker_id: str,
        now: datetime,
        lease_until: datetime,
        priority: int = 100,
    ) -> list[int]:
        """Queue messages this worker sends at once, recorded as attempted; their ids in order.

        Each of ``messages`` gives ``chat_id``, ``citizen_id``, ``kind``, ``method`` and
        ``payload``. For replies written in the transaction that decided them: if the
        worker dies before it marks them (:meth:`finish_sent`), lease recovery sends
        them once more ("in doubt").
        """
        if not messages:
            return []
        rows = [
            {
                **message,
                "priority": priority,
                "status": SENDING,
                "not_before": now,
                "attempts": 1,
                "claimed_by": worker_id,
                "lease_until": lease_until,
                "created_at": now,
                "attempted_at": now,
            }
            for message in messages
        ]
        if len(rows) == 1:
            return [int((await _START_SENDING_ONE.execute(self._session, rows[0])).one()[0])]
        result = await self._session.execute(_START_SENDING, rows)
        return [int(row_id) for row_id in result.scalars().all()]

    async def finish_sent(self, ids: Sequence[int], *, worker_id: str, begin: bool = True) -> int:
        """Delete rows this worker attempted and that are settled (sent, or refused for good).

        Rows lease recovery took over meanwhile for an in-doubt resend are deleted too,
        sparing the citizen a duplicate; rows another worker already holds are left.
        ``begin=False`` when the transaction writes nothing else: on PostgreSQL the
        DELETE then runs on its own, without BEGIN and COMMIT (see
        ``FastStatement.execute``).
        """
        if not ids:
            return 0
        result = await _FINISH_SENT[dialect_name(self._session)].execute(
            self._session, {"p_ids": list(ids), "p_worker_id": worker_id}, begin=begin
        )
        return int(result.rowcount)

    async def claim_due(
        self,
        *,
        worker_id: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        per_chat_limit: int | None = None,
    ) -> ClaimedBatch:
        """Take up to ``limit`` due messages of chats nobody holds, for ``worker_id``.

        Retries come first, then pending rows, each in (not_before, priority, id)
        order; a chat gets at most ``per_chat_limit`` rows per claim. Rows for
        citizens who stopped proactive messages or blocked the bot are dropped here
        instead of claimed. Atomic across instances: PostgreSQL serialises claims with
        an advisory lock and skips rows locked by other writers (``FOR UPDATE SKIP
        LOCKED``); SQLite has one writer at a time and the update re-checks the status
        (compare-and-set).
        """
        if limit <= 0:
            return ClaimedBatch(messages=[])
        postgres = dialect_name(self._session) == "postgresql"
        await serialize(self._session, CLAIM_LOCK_KEY)
        claimed: list[OutboxRecord] = []
        dropped: list[int] = []
        # A chat's retry row is the one that holds it, so only claimed/sending block it.
        for status, busy in ((RETRY, (CLAIMED, SENDING)), (PENDING, BUSY)):
            room = limit - len(claimed)
            if room <= 0:
                break
            holders, resting = _HOLDERS, _RESTING
            query = (
                select(_T.c.id, _T.c.chat_id, _T.c.citizen_id)
                .where(
                    _T.c.status == status,
                    _T.c.not_before <= now,
                    _T.c.chat_id.not_in(
                        select(holders.c.chat_id).where(holders.c.status.in_(busy))
                    ),
                    _T.c.chat_id.not_in(
                        select(resting.c.chat_id).where(
                            resting.c.status == SENT,
                            resting.c.not_before > now,
                            or_(resting.c.claimed_by.is_(None), resting.c.claimed_by != worker_id),
                        )
                    ),
                )
                .order_by(_T.c.not_before, _T.c.priority, _T.c.id)
                .limit(room)
            )
            if postgres:
                query = query.with_for_update(skip_locked=True)
            candidates = (await self._session.execute(query)).all()
            if not candidates:
                continue
            quiet = await self._quiet_citizens({row.citizen_id for row in candidates})
            keep: list[int] = []
            per_chat: Counter[int] = Counter()
            for row in candidates:
                if row.citizen_id in quiet:
                    continue
                per_chat[row.chat_id] += 1
                if per_chat_limit is None or per_chat[row.chat_id] <= per_chat_limit:
                    keep.append(row.id)
            dropped += await self._drop_quiet(
                [row.id for row in candidates if row.citizen_id in quiet], quiet, status
            )
            if keep:
                result = await self._session.execute(
                    update(_T)
                    .where(self._ids(keep), _T.c.status == status)
                    .values(status=CLAIMED, claimed_by=worker_id, lease_until=lease_until)
                    .returning(*_T.c)
                )
                claimed += [_record(row) for row in result.all()]
        claimed.sort(key=_due_order)
        return ClaimedBatch(messages=claimed, dropped=sorted(dropped))

    async def _quiet_citizens(self, citizen_ids: set[int | None]) -> dict[int, str]:
        """Of these citizens, those not to be written to, with why."""
        wanted = [citizen_id for citizen_id in citizen_ids if citizen_id is not None]
        if not wanted:
            return {}
        result = await self._session.execute(
            select(Citizen.id, Citizen.stopped_at, Citizen.unreachable_at).where(
                Citizen.id.in_(wanted),
                or_(Citizen.stopped_at.is_not(None), Citizen.unreachable_at.is_not(None)),
            )
        )
        return {
            int(citizen_id): "citizen blocked the bot" if unreachable else "citizen stopped"
            for citizen_id, _stopped, unreachable in result.all()
        }

    async def _drop_quiet(self, ids: list[int], quiet: Mapping[int, str], status: str) -> list[int]:
        if not ids:
            return []
        reason = case(
            *((_T.c.citizen_id == citizen_id, why) for citizen_id, why in quiet.items()),
            else_="citizen not reachable",
        )
        result = await self._session.execute(
            update(_T)
            .where(self._ids(ids), _T.c.status == status)
            .values(status=DROPPED, last_error=reason, lease_until=None)
            .returning(_T.c.id)
        )
        return [int(row_id) for row_id in result.scalars().all()]

    async def mark_attempts(
        self, ids: Sequence[int], *, worker_id: str, now: datetime, lease_until: datetime
    ) -> set[int]:
        """Record, before calling Telegram, that these claimed rows are being sent.

        Returns the ids this worker still held (a row whose lease another instance
        took over is left alone and must not be sent).
        """
        if not ids:
            return set()
        result = await _MARK_ATTEMPTS[dialect_name(self._session)].execute(
            self._session,
            {
                "p_ids": list(ids),
                "p_worker_id": worker_id,
                "p_now": now,
                "p_lease_until": lease_until,
            },
        )
        return {int(row[0]) for row in result.all()}

    async def mark_sent(
        self,
        sent: Mapping[int, int | None],
        *,
        worker_id: str,
        now: datetime,
        chat_gap: timedelta = timedelta(0),
        group_gap: timedelta = timedelta(0),
    ) -> set[int]:
        """Record Telegram's message ids for attempts this worker made; returns the ids marked.

        ``not_before`` becomes ``now`` plus the gap a private chat (``chat_gap``) or
        a group (``group_gap``) needs before its next message, which other workers
        respect. A row that lease recovery already queued for an in-doubt resend,
        and that no one has claimed yet, is marked sent too: the confirmation
        arrived in time to spare the citizen a duplicate.
        """
        if not sent:
            return set()
        dialect = dialect_name(self._session)
        params: dict[str, Any] = {
            "p_worker_id": worker_id,
            "p_now": now,
            "p_chat_due": now + chat_gap,
            "p_group_due": now + group_gap,
        }
        if dialect == "postgresql":
            params.update(p_ids=list(sent), p_message_ids=list(sent.values()))
        else:
            params["p_sent"] = [[row_id, message_id] for row_id, message_id in sent.items()]
        result = await _MARK_SENT[dialect].execute(self._session, params)
        return {int(row[0]) for row in result.all()}

    async def mark_retry(
        self,
        message_id: int,
        *,
        worker_id: str,
        not_before: datetime,
        error: str,
        count_attempt: bool = True,
        in_doubt: bool = False,
    ) -> bool:
        """Send this attempted row again at ``not_before``; it keeps holding its chat.

        ``count_attempt=False`` when Telegram refused before sending (429, a
        revoked token): that attempt does not count toward the limit. ``in_doubt``
        when the attempt may have reached Telegram (a timeout, a dropped connection).
        """
        if in_doubt:
            last_error: Any = f"{IN_DOUBT}: {error}"[:ERROR_LENGTH]
        else:
            last_error = _error_keeping_doubt(error)
        result = await self._session.execute(
            update(_T)
            .where(_T.c.id == message_id, _T.c.status == SENDING, _T.c.claimed_by == worker_id)
            .values(
                status=RETRY,
                not_before=not_before,
                last_error=last_error,
                attempts=_T.c.attempts if count_attempt else _T.c.attempts - 1,
                claimed_by=None,
                lease_until=None,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(self, message_id: int, *, worker_id: str, error: str) -> bool:
        """Give up on a row this worker holds (a permanent error, or out of attempts)."""
        return await self._end_held(
            message_id, worker_id, status=FAILED, last_error=_error_keeping_doubt(error)
        )

    async def mark_dropped(self, message_id: int, *, worker_id: str, reason: str) -> bool:
        """Drop a row this worker holds instead of sending it (its chat refused us)."""
        return await self._end_held(
            message_id, worker_id, status=DROPPED, last_error=reason[:ERROR_LENGTH]
        )

    async def _end_held(
        self, message_id: int, worker_id: str, *, status: str, last_error: Any
    ) -> bool:
        """End a row this worker holds (claimed or sending) in ``status``."""
        result = await self._session.execute(
            update(_T)
            .where(
                _T.c.id == message_id,
                _T.c.status.in_((CLAIMED, SENDING)),
                _T.c.claimed_by == worker_id,
            )
            .values(status=status, last_error=last_error, lease_until=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def drop_chat(self, chat_id: int, *, reason: str) -> list[int]:
        """Drop every unsent row of a chat that refused the bot; returns their ids.

        Rows being sent right now are left to their sender.
        """
        result = await self._session.execute(
            update(_T)
            .where(_T.c.status.in_(UNSENT), _T.c.chat_id == chat_id)
            .values(status=DROPPED, last_error=reason[:ERROR_LENGTH], lease_until=None)
            .returning(_T.c.id)
        )
        return sorted(int(row_id) for row_id in result.scalars().all())

    async def forget_chat(self, chat_id: int) -> int:
        """Delete every row of a private chat, whatever its status (erasure).

        A row being sent right now is deleted too: its sender then finds nothing to
        mark, and nothing is sent again.
        """
        result = await self._session.execute(delete(_T).where(_T.c.chat_id == chat_id))
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def redact(self, key_prefix: str, old: str, new: str) -> int:
        """Erasure: ``new`` for ``old`` in the text and caption of every row whose
        idempotency key starts with ``key_prefix``, whatever its status; how many changed.

        For messages about a citizen sent to others (a manager's card shows the
        reporter's name): those still queued go out redacted, sent ones keep no trace.
        """
        rows = await self._session.execute(
            select(_T.c.id, _T.c.payload).where(
                _T.c.idempotency_key.startswith(key_prefix, autoescape=True)
            )
        )
        changed = 0
        for row_id, payload in rows.all():
            redacted = {
                name: value.replace(old, new)
                if name in ("text", "caption") and isinstance(value, str)
                else value
                for name, value in payload.items()
            }
            if redacted != payload:
                await self._session.execute(
                    update(_T).where(_T.c.id == row_id).values(payload=redacted)
                )
                changed += 1
        return changed

    async def purge_finished(self, before: datetime) -> int:
        """Delete sent, failed and dropped rows that finished before ``before``."""
        result = await self._session.execute(
            delete(_T).where(
                _T.c.status.in_((SENT, FAILED, DROPPED)),
                func.coalesce(_T.c.sent_at, _T.c.attempted_at, _T.c.created_at) < before,
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def release(self, ids: Iterable[int], *, worker_id: str) -> int:
        """Hand back claimed rows this worker will not attempt (stopping, chat held up)."""
        wanted = list(ids)
        if not wanted:
            return 0
        result = await self._session.execute(
            update(_T)
            .where(self._ids(wanted), _T.c.status == CLAIMED, _T.c.claimed_by == worker_id)
            .values(
                status=case((_T.c.attempts > 0, RETRY), else_=PENDING),
                claimed_by=None,
                lease_until=None,
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def recover_expired(
        self,
        *,
        now: datetime,
        worker_id: str | None = None,
        leased_before: datetime | None = None,
    ) -> Recovery:
        """Take back rows whose lease ran out; with ``worker_id``, also that worker's
        whose lease ends by ``leased_before`` (all of them without it).

        Pass ``worker_id`` only at start-up, for this worker's previous life: its
        claims are then known to be dead without waiting for their leases. Its new
        life may already hold rows (replies being sent): ``leased_before``, the start
        plus the lease, leaves those alone.
        """
        expired = _lease_expired(now, worker_id, leased_before)
        released = await self._session.execute(
            update(_T)
            .where(_T.c.status == CLAIMED, expired)
            .values(
                status=case((_T.c.attempts > 0, RETRY), else_=PENDING),
                claimed_by=None,
                lease_until=None,
            )
            .returning(_T.c.id)
        )
        abandoned = await self._session.execute(
            update(_T)
            .where(_T.c.status == SENDING, expired, _T.c.last_error.like(IN_DOUBT + "%"))
            .values(
                status=FAILED,
                last_error=f"{IN_DOUBT} twice: not resent",
                claimed_by=None,
                lease_until=None,
            )
            .returning(_T.c.id)
        )
        in_doubt = await self._session.execute(
            update(_T)
            .where(_T.c.status == SENDING, expired)
            .values(
                status=RETRY,
                not_before=now,
                last_error=f"{IN_DOUBT}: attempt never confirmed (lease expired); resent once",
                claimed_by=None,
                lease_until=None,
            )
            .returning(_T.c.id)
        )
        return Recovery(
            released=sorted(int(i) for i in released.scalars().all()),
            in_doubt=sorted(int(i) for i in in_doubt.scalars().all()),
            abandoned=sorted(int(i) for i in abandoned.scalars().all()),
        )

    # --- reading -------------------------------------------------------------------------

    async def message(self, message_id: int) -> OutboxRecord | None:
        """One row, whatever its status."""
        result = await self._session.execute(select(*_T.c).where(_T.c.id == message_id))
        row = result.first()
        return None if row is None else _record(row)

    async def latest_call(self, citizen_id: int, kind: str) -> tuple[str, dict[str, Any]] | None:
        """The method and payload of the newest row of ``kind`` for the citizen that was
        sent or is still to be sent (a failed or dropped one changed nothing)."""
        result = await self._session.execute(
            select(_T.c.method, _T.c.payload)
            .where(
                _T.c.citizen_id == citizen_id,
                _T.c.kind == kind,
                _T.c.status.not_in((FAILED, DROPPED)),
            )
            .order_by(_T.c.id.desc())
            .limit(1)
        )
        row = result.first()
        return None if row is None else (str(row[0]), dict(row[1]))

    async def messages(self, ids: Iterable[int]) -> list[OutboxRecord]:
        """Several rows by id, in id order."""
        wanted = list(ids)
        if not wanted:
            return []
        result = await self._session.execute(
            select(*_T.c).where(_T.c.id.in_(wanted)).order_by(_T.c.id)
        )
        return [_record(row) for row in result.all()]

    async def stats(self, now: datetime) -> OutboxStats:
        """Counts by status and the backlog of due rows, for health checks and the CLI."""
        counts_result = await self._session.execute(
            select(_T.c.status, func.count()).group_by(_T.c.status)
        )
        counts = {str(status): int(count) for status, count in counts_result.all()}
        due_result = await self._session.execute(
            select(func.count(), func.min(_T.c.not_before)).where(
                _T.c.status.in_((PENDING, RETRY)), _T.c.not_before <= now
            )
        )
        due, oldest = due_result.one()
        return OutboxStats(counts=counts, due=int(due or 0), oldest_due=oldest)
