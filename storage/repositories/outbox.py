"""The outbox: proactive messages waiting for the sender."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage
from storage.repositories._dialect import insert_ignoring_conflicts

PENDING = "pending"


class OutboxRepository:
    """Writes messages to the outbox (the sender's side grows in bot/outbox)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

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
        statement = (
            insert_ignoring_conflicts(self._session, OutboxMessage, ["idempotency_key"])
            .values(
                chat_id=chat_id,
                citizen_id=citizen_id,
                kind=kind,
                method=method,
                payload=payload,
                priority=priority,
                status=PENDING,
                not_before=not_before or now,
                attempts=0,
                idempotency_key=idempotency_key,
                broadcast_id=broadcast_id,
                created_at=now,
            )
            .returning(OutboxMessage.id)
        )
        result = await self._session.execute(statement)
        new_id = result.scalar()
        return None if new_id is None else int(new_id)
