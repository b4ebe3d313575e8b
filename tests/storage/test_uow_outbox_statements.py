"""The outbox statements every update may run, built once with parameters: queueing a
message, recording replies as sent, and settling them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from storage.db import Database
from storage.models import OutboxMessage
from storage.repositories.outbox import IN_DOUBT, PENDING, RETRY, SENDING

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEASE = NOW + timedelta(seconds=30)


def reply(chat_id: int, text: str) -> dict[str, object]:
    return {
        "chat_id": chat_id,
        "citizen_id": None,
        "kind": "reply",
        "method": "SendMessage",
        "payload": {"chat_id": chat_id, "text": text},
    }


async def test_enqueue_stores_every_value_and_skips_a_known_key(database: Database) -> None:
    later = NOW + timedelta(minutes=5)
    async with database.uow() as uow:
        first = await uow.repos.outbox.enqueue(
            chat_id=9,
            citizen_id=None,
            kind="notice",
            method="SendMessage",
            payload={"chat_id": 9, "text": "é"},
            now=NOW,
            priority=7,
            not_before=later,
            idempotency_key="notice:9",
            broadcast_id=None,
        )
        again = await uow.repos.outbox.enqueue(
            chat_id=9,
            citizen_id=None,
            kind="notice",
            method="SendMessage",
            payload={"chat_id": 9, "text": "other"},
            now=NOW,
            idempotency_key="notice:9",
        )
        plain = await uow.repos.outbox.enqueue(
            chat_id=10, citizen_id=None, kind="notice", method="SendMessage", payload={}, now=NOW
        )
    assert first is not None and again is None and plain is not None
    async with database.uow() as uow:
        stored = await uow.repos.outbox.message(first)
        other = await uow.repos.outbox.message(plain)
    assert stored is not None and other is not None
    assert (stored.chat_id, stored.kind, stored.method) == (9, "notice", "SendMessage")
    assert stored.payload == {"chat_id": 9, "text": "é"}
    assert (stored.priority, stored.status, stored.attempts) == (7, PENDING, 0)
    assert stored.not_before == later and stored.created_at == NOW
    assert stored.idempotency_key == "notice:9"
    assert other.not_before == NOW and other.priority == 100 and other.idempotency_key is None


async def test_sent_replies_are_settled_only_for_their_worker(database: Database) -> None:
    async with database.uow() as uow:
        mine = await uow.repos.outbox.start_sending(
            [reply(1, "a"), reply(2, "b"), reply(1, "c")],
            worker_id="w1",
            now=NOW,
            lease_until=LEASE,
        )
        theirs = await uow.repos.outbox.start_sending(
            [reply(3, "d")], worker_id="w2", now=NOW, lease_until=LEASE
        )
        # Lease recovery queued this one of w1's for an in-doubt resend meanwhile.
        await uow.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == mine[2])
            .values(status=RETRY, claimed_by=None, last_error=f"{IN_DOUBT}: lease ran out")
        )
    assert mine == sorted(mine) and len(set(mine)) == 3
    async with database.uow() as uow:
        sent = await uow.repos.outbox.messages(mine)
        assert [message.payload["text"] for message in sent] == ["a", "b", "c"]
        assert all(m.attempts == 1 for m in sent[:2]) and sent[0].status == SENDING
        assert await uow.repos.outbox.finish_sent([*mine, *theirs], worker_id="w1") == 3
        assert await uow.repos.outbox.finish_sent([], worker_id="w1") == 0
    async with database.uow() as uow:
        assert await uow.repos.outbox.messages(mine) == []
        left = await uow.repos.outbox.messages(theirs)
    assert [message.claimed_by for message in left] == ["w2"]
