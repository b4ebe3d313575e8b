"""Plain data passed out of the storage layer (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class CitizenRecord:
    """A citizen as the application sees one."""

    id: int
    telegram_id: int | None
    pseudonym: str
    language: str
    language_chosen: bool
    first_name: str | None
    username: str | None
    timezone: str | None
    consented_at: datetime | None
    created_at: datetime
    stopped_at: datetime | None
    unreachable_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomingUpdate:
    """An update as received, about to be stored in the inbox."""

    update_id: int
    chat_id: int | None
    user_id: int | None
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxStats:
    """How many inbox rows are in each state."""

    pending: int
    done: int
    failed: int
