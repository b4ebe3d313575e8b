"""The outbox repository's sender side, on SQLite and PostgreSQL (no Telegram involved)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text, update

from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories.outbox import (
    _T,
    CLAIMED,
    DROPPED,
    FAILED,
    IN_DOUBT,
    PENDING,
    RETRY,
    SENDING,
    SENT,
    ClaimedBatch,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


async def queue(
    database: Database,
    chat_id: int,
    count: int = 1,
    *,
    citizen_id: int | None = None,
    at: datetime = NOW,
    priority: int = 100,
) -> list[int]:
    ids = []
    async with database.uow() as uow:
        for index in range(count):
            new_id = await uow.repos.outbox.enqueue(
                chat_id=chat_id,
                citizen_id=citizen_id,
                kind="notification",
                method="SendMessage",
                payload={"chat_id": chat_id, "text": f"m{index}"},
                now=NOW,
                not_before=at,
                priority=priority,
            )
            assert new_id is not None
            ids.append(new_id)
    return ids


async def claim(
    database: Database, worker: str = "w1", *, now: datetime = NOW, limit: int = 100, **kw: Any
) -> ClaimedBatch:
    async with database.uow() as uow:
        return await uow.repos.outbox.claim_due(
            worker_id=worker, now=now, lease_until=now + LEASE, limit=limit, **kw
        )


async def attempt(database: Database, ids: list[int], worker: str = "w1") -> set[int]:
    async with database.uow() as uow:
        return await uow.repos.outbox.mark_attempts(
            ids, worker_id=worker, now=NOW, lease_until=NOW + LEASE
        )


async def status_of(database: Database, message_id: int) -> str:
    async with database.uow() as uow:
        row = await uow.repos.outbox.message(message_id)
    assert row is not None
    return row.status


async def test_claims_due_rows_in_due_order_and_leaves_future_ones(database: Database) -> None:
    later = await queue(database, 1, at=NOW + timedelta(minutes=5))
    low = await queue(database, 2, priority=200)
    high = await queue(database, 3, priority=10)
    batch = await claim(database)
    assert [m.id for m in batch.messages] == [high[0], low[0]]
    assert all(m.status == CLAIMED and m.claimed_by == "w1" for m in batch.messages)
    assert all(m.lease_until == NOW + LEASE for m in batch.messages)
    assert await status_of(database, later[0]) == PENDING


async def test_a_chat_held_by_a_claim_is_not_claimed_again(database: Database) -> None:
    first = await queue(database, 7, 3)
    batch = await claim(database, per_chat_limit=2)
    assert [m.id for m in batch.messages] == first[:2]
    # The third waits for the chat, whoever asks.
    assert (await claim(database, "w2")).messages == []
    assert (await claim(database, "w1")).messages == []


async def test_a_chat_waits_for_its_retry_and_the_retry_goes_first(database: Database) -> None:
    ids = await queue(database, 7, 2)
    await claim(database, per_chat_limit=1)
    await attempt(database, [ids[0]])
    async with database.uow() as uow:
        assert await uow.repos.outbox.mark_retry(
            ids[0], worker_id="w1", not_before=NOW + timedelta(seconds=4), error="HTTP 502"
        )
    # The second message is due, but its chat waits for the first one's retry.
    assert (await claim(database, now=NOW + timedelta(seconds=1))).messages == []
    batch = await claim(database, now=NOW + timedelta(seconds=5))
    assert [(m.id, m.attempts) for m in batch.messages] == [(ids[0], 1)]


async def test_limit_and_per_chat_limit(database: Database) -> None:
    for chat in range(1, 6):
        await queue(database, chat, 3)
    batch = await claim(database, limit=4, per_chat_limit=1)
    assert len(batch.messages) <= 4
    assert len({m.chat_id for m in batch.messages}) == len(batch.messages)


async def test_rows_for_stopped_or_unreachable_citizens_are_dropped_at_claim(
    database: Database,
) -> None:
    async with database.uow() as uow:
        stopped, _ = await uow.repos.citizens.ensure(
            telegram_id=501, language="en", first_name=None, username=None, now=NOW
        )
        blocked, _ = await uow.repos.citizens.ensure(
            telegram_id=502, language="en", first_name=None, username=None, now=NOW
        )
        active, _ = await uow.repos.citizens.ensure(
            telegram_id=503, language="en", first_name=None, username=None, now=NOW
        )
        await uow.repos.citizens.set_stopped(stopped.id, NOW)
        await uow.repos.citizens.set_unreachable(502, NOW)
    to_stopped = await queue(database, 501, citizen_id=stopped.id)
    to_blocked = await queue(database, 502, citizen_id=blocked.id)
    to_active = await queue(database, 503, citizen_id=active.id)
    batch = await claim(database)
    assert [m.id for m in batch.messages] == to_active
    assert batch.dropped == sorted(to_stopped + to_blocked)
    async with database.uow() as uow:
        rows = await uow.repos.outbox.messages(to_stopped + to_blocked)
    assert [(r.status, r.last_error) for r in rows] == [
        (DROPPED, "citizen stopped"),
        (DROPPED, "citizen blocked the bot"),
    ]


async def test_attempt_then_sent(database: Database) -> None:
    [message_id] = await queue(database, 9)
    await claim(database)
    assert await attempt(database, [message_id], "someone else") == set()
    assert await attempt(database, [message_id]) == {message_id}
    async with database.uow() as uow:
        marked = await uow.repos.outbox.mark_sent({message_id: 4242}, worker_id="w1", now=NOW)
        row = await uow.repos.outbox.message(message_id)
    assert marked == {message_id}
    assert row is not None
    assert (row.status, row.attempts, row.telegram_message_id, row.sent_at) == (
        SENT,
        1,
        4242,
        NOW,
    )
    assert row.attempted_at == NOW


async def test_sent_rows_get_their_message_ids_and_hold_their_chats(database: Database) -> None:
    """Each row its own message id (or none), and its chat rests for the chat's
    interval: a private chat's or a group's."""
    [private], [group], [silent] = [await queue(database, chat) for chat in (9, -100, 12)]
    await claim(database)
    assert await attempt(database, [private, group, silent]) == {private, group, silent}
    async with database.uow() as uow:
        marked = await uow.repos.outbox.mark_sent(
            {private: 501, group: 502, silent: None},
            worker_id="w1",
            now=NOW,
            chat_gap=timedelta(seconds=1),
            group_gap=timedelta(seconds=3),
        )
        rows = await uow.repos.outbox.messages([private, group, silent])
    assert marked == {private, group, silent}
    assert {(row.id, row.status, row.telegram_message_id, row.not_before) for row in rows} == {
        (private, SENT, 501, NOW + timedelta(seconds=1)),
        (group, SENT, 502, NOW + timedelta(seconds=3)),
        (silent, SENT, None, NOW + timedelta(seconds=1)),
    }


async def test_the_sender_bookkeeping_finds_rows_by_primary_key(database: Database) -> None:
    """SQLite: the id list (a JSON array) is walked once, each row found by its key;
    never a scan of the table per id or of the ids per row."""
    if not database.is_sqlite:
        pytest.skip("PostgreSQL joins the ids as an array, as _ids does")
    from storage.repositories.outbox import _FINISH_SENT, _MARK_ATTEMPTS, _MARK_SENT

    async with database.uow() as uow:
        dialect = uow.session.get_bind().dialect
        for statement in (_MARK_SENT, _MARK_ATTEMPTS, _FINISH_SENT):
            sql = statement["sqlite"]._plan(dialect).sql
            connection = await uow.session.connection()
            arguments = (None,) * sql.count("?")
            rows = (await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, arguments)).all()
            plan = " | ".join(str(row[-1]) for row in rows)
            assert "SEARCH outbox_messages USING INTEGER PRIMARY KEY" in plan, plan
            assert "SCAN outbox_messages" not in plan, plan
            assert plan.count("SCAN") == 1, plan


async def test_recovery_releases_claims_and_puts_attempts_in_doubt_once(
    database: Database,
) -> None:
    claimed_only, attempted = await queue(database, 1), await queue(database, 2)
    await claim(database, "crashed")
    await attempt(database, attempted, "crashed")
    async with database.uow() as uow:
        early = await uow.repos.outbox.recover_expired(now=NOW + LEASE - timedelta(seconds=1))
    assert (early.released, early.in_doubt, early.abandoned) == ([], [], [])

    after = NOW + LEASE + timedelta(seconds=1)
    async with database.uow() as uow:
        recovery = await uow.repos.outbox.recover_expired(now=after)
        rows = await uow.repos.outbox.messages(claimed_only + attempted)
    assert (recovery.released, recovery.in_doubt) == (claimed_only, attempted)
    assert [r.status for r in rows] == [PENDING, RETRY]
    assert rows[1].in_doubt and rows[1].last_error is not None
    assert rows[1].last_error.startswith(IN_DOUBT)

    # The one resend is attempted and the instance crashes again: no third send.
    batch = await claim(database, "second", now=after)
    assert {m.id for m in batch.messages} == set(claimed_only + attempted)
    async with database.uow() as uow:
        await uow.repos.outbox.mark_attempts(
            attempted, worker_id="second", now=after, lease_until=after + LEASE
        )
    async with database.uow() as uow:
        again = await uow.repos.outbox.recover_expired(now=after + 2 * LEASE)
        [row] = await uow.repos.outbox.messages(attempted)
    assert again.abandoned == attempted
    assert row.status == FAILED
    assert row.last_error == f"{IN_DOUBT} twice: not resent"


async def test_a_late_confirmation_cancels_the_in_doubt_resend(database: Database) -> None:
    [message_id] = await queue(database, 3)
    await claim(database, "slow")
    await attempt(database, [message_id], "slow")
    async with database.uow() as uow:
        await uow.repos.outbox.recover_expired(now=NOW + 2 * LEASE)
    async with database.uow() as uow:
        marked = await uow.repos.outbox.mark_sent({message_id: 77}, worker_id="slow", now=NOW)
    assert marked == {message_id}
    assert await status_of(database, message_id) == SENT


async def test_restart_takes_back_its_own_claims_at_once(database: Database) -> None:
    [message_id] = await queue(database, 4)
    await claim(database, "host-a")
    await attempt(database, [message_id], "host-a")
    async with database.uow() as uow:
        other = await uow.repos.outbox.recover_expired(now=NOW, worker_id="host-b")
        own = await uow.repos.outbox.recover_expired(now=NOW, worker_id="host-a")
    assert other.in_doubt == []
    assert own.in_doubt == [message_id]


async def test_retry_errors_keep_the_doubt(database: Database) -> None:
    [message_id] = await queue(database, 5)
    await claim(database)
    await attempt(database, [message_id])
    async with database.uow() as uow:
        await uow.repos.outbox.mark_retry(
            message_id, worker_id="w1", not_before=NOW, error="timeout", in_doubt=True
        )
    await claim(database)
    await attempt(database, [message_id])
    async with database.uow() as uow:
        await uow.repos.outbox.mark_retry(
            message_id, worker_id="w1", not_before=NOW, error="TelegramServerError: 502"
        )
        row = await uow.repos.outbox.message(message_id)
    assert row is not None
    assert row.in_doubt
    assert row.last_error == f"{IN_DOUBT}; TelegramServerError: 502"
    assert (row.status, row.attempts) == (RETRY, 2)


async def test_a_refused_attempt_does_not_count(database: Database) -> None:
    [message_id] = await queue(database, 6)
    await claim(database)
    await attempt(database, [message_id])
    async with database.uow() as uow:
        await uow.repos.outbox.mark_retry(
            message_id, worker_id="w1", not_before=NOW, error="429", count_attempt=False
        )
        row = await uow.repos.outbox.message(message_id)
    assert row is not None and row.attempts == 0


async def test_drop_chat_leaves_other_chats_and_rows_in_flight(database: Database) -> None:
    sending = await queue(database, 8)
    await claim(database)
    await attempt(database, sending)
    waiting = await queue(database, 8, 2)
    other = await queue(database, 9)
    async with database.uow() as uow:
        dropped = await uow.repos.outbox.drop_chat(8, reason="Forbidden")
    assert dropped == waiting
    assert await status_of(database, sending[0]) == SENDING
    assert await status_of(database, other[0]) == PENDING


async def test_release_and_stats(database: Database) -> None:
    ids = await queue(database, 10, 2)
    await queue(database, 11, at=NOW + timedelta(hours=1))
    batch = await claim(database, per_chat_limit=2)
    async with database.uow() as uow:
        assert await uow.repos.outbox.release([m.id for m in batch.messages], worker_id="w1") == 2
        stats = await uow.repos.outbox.stats(NOW)
    assert stats.count(PENDING) == 3
    assert (stats.due, stats.oldest_due) == (2, NOW)
    assert await status_of(database, ids[0]) == PENDING


async def test_concurrent_claimers_never_share_a_row_or_a_chat(database_url: str) -> None:
    """Four instances (four engines) claim at once; on PostgreSQL truly concurrently."""
    databases = [Database(database_url) for _ in range(4)]
    try:
        for chat in range(1, 41):
            await queue(databases[0], chat, 3)
        taken: list[tuple[str, int, int]] = []

        async def claimer(index: int) -> None:
            name = f"w{index}"
            while True:
                batch = await claim(databases[index], name, limit=7, per_chat_limit=3)
                if not batch.messages:
                    return
                taken.extend((name, m.chat_id, m.id) for m in batch.messages)

        await asyncio.gather(*(claimer(index) for index in range(4)))
        ids = [message_id for _, _, message_id in taken]
        assert len(ids) == len(set(ids))
        # Every chat was claimed, each by one instance and from its first message on
        # (rows a claim left behind wait for their chat to be released).
        owners: dict[int, set[str]] = {}
        claimed: dict[int, list[int]] = {}
        for name, chat, message_id in taken:
            owners.setdefault(chat, set()).add(name)
            claimed.setdefault(chat, []).append(message_id)
        assert sorted(owners) == list(range(1, 41))
        assert all(len(names) == 1 for names in owners.values())
        for chat, message_ids in claimed.items():
            first = 3 * (chat - 1) + 1
            assert sorted(message_ids) == list(range(first, first + len(message_ids)))
    finally:
        for db in databases:
            await db.dispose()


async def test_due_rows_are_read_from_the_due_index_in_order(database: Database) -> None:
    """The claim's candidate scan is an ordered range of ix_outbox_messages_due, no sort."""
    await queue(database, 1, 3)
    stamp = "'2026-03-02 09:00:00'" if database.is_sqlite else "'2026-03-02 09:00:00+00'"
    sql = (
        "SELECT id FROM outbox_messages WHERE status = 'pending' AND not_before <= "
        f"{stamp} ORDER BY not_before, priority, id LIMIT 10"
    )
    async with database.engine.connect() as conn:
        if database.is_sqlite:
            result = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)
        else:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            result = await conn.exec_driver_sql("EXPLAIN " + sql)
        plan = " ".join(str(row) for row in result.all())
    assert "ix_outbox_messages_due" in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


async def test_updates_by_id_never_test_each_row_against_the_id_list(
    database: Database,
) -> None:
    """Regression: with statistics not yet refreshed after a large broadcast was queued,
    ``id IN (...) AND status = 'pending'`` walked the pending range of the due index and
    compared every row with every id (1.5 s per claim of 1,000 rows among 100,000).
    Joined to the ids instead, the worst plan is linear."""
    if database.is_sqlite:
        pytest.skip("SQLite looks the rowid list up as it is")
    async with database.uow() as uow:
        await uow.session.execute(
            insert(OutboxMessage),
            [
                {
                    "chat_id": chat,
                    "kind": "broadcast",
                    "method": "SendMessage",
                    "payload": {"chat_id": chat, "text": "news"},
                    "priority": 100,
                    "status": PENDING,
                    "not_before": NOW,
                    "attempts": 0,
                    "created_at": NOW,
                }
                for chat in range(1, 20_001)
            ],
        )
    async with database.uow() as uow:
        statement = (
            update(_T)
            .where(uow.repos.outbox._ids(list(range(1, 1001))), _T.c.status == PENDING)
            .values(status=CLAIMED)
        )
        sql = str(
            statement.compile(
                dialect=uow.session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
        )
        plan = " ".join(
            str(row) for row in (await uow.session.execute(text("EXPLAIN " + sql))).all()
        )
    assert "picked" in plan, plan
    assert "ANY" not in plan, plan
