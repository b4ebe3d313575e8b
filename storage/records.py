"""Plain data passed out of the storage layer (never ORM rows)."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    # The parsed update, when it was received by this process (never stored): handling
    # it then does not parse the payload a second time.
    parsed: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboxStats:
    """How many inbox rows are in each state."""

    pending: int
    done: int
    failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceRecord:
    """A public service."""

    id: int
    code: str
    names: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class CategoryRecord:
    """A report category and its targets."""

    id: int
    code: str
    service_id: int
    service_code: str
    names: dict[str, str]
    target_days: int
    radius_m: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRecord:
    """A report as the application sees one."""

    id: int
    reference: str
    citizen_id: int | None
    category_id: int
    category_code: str
    category_names: dict[str, str]
    service_id: int
    status: str
    description: str
    latitude: float | None
    longitude: float | None
    address: str | None
    anonymous: bool
    supporters: int
    created_at: datetime
    due_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportEventRecord:
    """One line of a report's history."""

    at: datetime
    kind: str
    actor: str
    from_status: str | None
    to_status: str | None
    note: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A citizen's open dialog session."""

    citizen_id: int
    flow_id: str
    revision_id: int
    state: dict[str, Any]
    started_at: datetime
    last_activity_at: datetime
    expires_at: datetime
    nudged_at: datetime | None
    pending_flow: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowRevisionRecord:
    """One stored revision of a flow."""

    id: int
    flow_id: str
    number: int
    source: str
    checksum: str
    author: str
    created_at: datetime
    published: bool
