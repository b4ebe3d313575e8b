"""SQLAlchemy 2.0 typed models. The schema changes only through Alembic migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# none_as_null: a cleared payload is SQL NULL, not the JSON value null.
JSONDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    """Declarative base with constraint names Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
    }


class Citizen(Base):
    """Everyone who talks to the bot. Personal fields are cleared on erasure."""

    __tablename__ = "citizens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    telegram_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    pseudonym: Mapped[str] = mapped_column(String(32), unique=True)
    language: Mapped[str] = mapped_column(String(8))
    language_chosen: Mapped[bool] = mapped_column(default=False)
    first_name: Mapped[str | None] = mapped_column(String(128))
    username: Mapped[str | None] = mapped_column(String(64))
    timezone: Mapped[str | None] = mapped_column(String(64))
    consented_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    unreachable_at: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]


class InboxUpdate(Base):
    """Every incoming update, stored before it is handled (unique ``update_id``).

    The payload is cleared once the update is handled: the row stays only to
    recognise a repeated delivery.
    """

    __tablename__ = "inbox_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any] | None]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime]
    handled_at: Mapped[datetime | None]

    __table_args__ = (
        Index("ix_inbox_updates_pending", "status", "update_id"),
        Index("ix_inbox_updates_user_id", "user_id"),
    )


class Service(Base):
    """A public service that answers reports and receives ratings (e.g. street lighting)."""

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    names: Mapped[dict[str, Any]]
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Category(Base):
    """What a citizen reports (a broken light, a pothole), answered by one service."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    names: Mapped[dict[str, Any]]
    target_days: Mapped[int] = mapped_column(Integer, default=10)
    radius_m: Mapped[int] = mapped_column(Integer, default=50)
    open311_code: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class FlowRevision(Base):
    """An immutable revision of a dialog flow; conversations keep the one they began on."""

    __tablename__ = "flow_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    flow_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    checksum: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    published: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (UniqueConstraint("flow_id", "number"),)


class DialogSession(Base):
    """The conversation a citizen is in; saved with every accepted answer."""

    __tablename__ = "dialog_sessions"

    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True
    )
    flow_id: Mapped[str] = mapped_column(String(64))
    revision_id: Mapped[int] = mapped_column(ForeignKey("flow_revisions.id"))
    state: Mapped[dict[str, Any]]
    started_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    nudge_at: Mapped[datetime | None] = mapped_column(index=True)
    nudged_at: Mapped[datetime | None]
    pending_flow: Mapped[str | None] = mapped_column(String(64))


class Report(Base):
    """A service issue reported by a citizen (a FixMyStreet-style problem report)."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(16), unique=True)
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="SET NULL"), index=True
    )
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    status: Mapped[str] = mapped_column(String(32), default="open")
    description: Mapped[str] = mapped_column(Text)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    address: Mapped[str | None] = mapped_column(String(500))
    anonymous: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str] = mapped_column(String(8))
    supporters: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    due_at: Mapped[datetime]
    # Digests count the fixes of a period: a few rows of a large table.
    fixed_at: Mapped[datetime | None] = mapped_column(index=True)
    closed_at: Mapped[datetime | None]
    # The area whose polygon holds the pin (none without a pin or outside every area).
    area_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="SET NULL"), index=True
    )

    __table_args__ = (
        Index("ix_reports_category_status", "category_id", "status"),
        Index("ix_reports_service_created", "service_id", "created_at"),
    )


class ReportPhoto(Base):
    """A photo of a report, stored without its EXIF metadata (it may hold a location)."""

    __tablename__ = "report_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    telegram_file_id: Mapped[str] = mapped_column(String(256))
    content_type: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    width: Mapped[int | None]
    height: Mapped[int | None]
    created_at: Mapped[datetime]


class ReportFollower(Base):
    """A citizen who follows a report ("me too"); they are told when its status changes."""

    __tablename__ = "report_followers"

    report_id: Mapped[int] = mapped_column(
        ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True
    )
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    created_at: Mapped[datetime]


class ReportEvent(Base):
    """The history of a report: who changed what, when."""

    __tablename__ = "report_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)

    # Digests look up a period's reopenings by kind and time.
    __table_args__ = (Index("ix_report_events_kind_at", "kind", "at"),)


class VolunteerProfile(Base):
    """What a volunteer can do, where and when, and whether we may contact them."""

    __tablename__ = "volunteer_profiles"

    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), primary_key=True
    )
    skills: Mapped[dict[str, Any]]
    areas: Mapped[dict[str, Any]]
    availability: Mapped[dict[str, Any]]
    contact_consent: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class Opportunity(Base):
    """A volunteering shift: a task at a place and time with a number of places."""

    __tablename__ = "opportunities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    titles: Mapped[dict[str, Any]]
    descriptions: Mapped[dict[str, Any]]
    skills: Mapped[dict[str, Any]]
    area: Mapped[str | None] = mapped_column(String(64))
    place: Mapped[str] = mapped_column(String(300))
    starts_at: Mapped[datetime] = mapped_column(index=True)
    ends_at: Mapped[datetime]
    slots: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")


class Signup(Base):
    """A volunteer's place on a shift, or on its waiting list."""

    __tablename__ = "signups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    opportunity_id: Mapped[int] = mapped_column(ForeignKey("opportunities.id", ondelete="CASCADE"))
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    cancelled_at: Mapped[datetime | None]
    attended: Mapped[bool | None]
    hours: Mapped[float | None]

    __table_args__ = (
        Index("ix_signups_opportunity_status", "opportunity_id", "status", "id"),
        # Digests count the sign-ups made in a period.
        Index("ix_signups_created_at", "created_at"),
    )


class Rating(Base):
    """A satisfaction rating: CSAT, the five drivers, effort, NPS and a comment."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="SET NULL"), index=True
    )
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id", ondelete="SET NULL"))
    overall: Mapped[int]
    timeliness: Mapped[int | None]
    knowledge: Mapped[int | None]
    courtesy: Mapped[int | None]
    fairness: Mapped[int | None]
    outcome: Mapped[int | None]
    effort: Mapped[int | None]
    nps: Mapped[int | None]
    comment: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_ratings_service_created", "service_id", "created_at"),
        # Digests and exports over every service read a period of ratings.
        Index("ix_ratings_created_at", "created_at"),
    )


class OutboxMessage(Base):
    """A proactive message, written in the transaction that decided to send it.

    The sender records an attempt before calling Telegram and marks it with the
    returned message id after, so a crash leaves a visible "in doubt" row, never a
    silent duplicate.
    """

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    priority: Mapped[int] = mapped_column(Integer, default=100)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    not_before: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    broadcast_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime]
    attempted_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_outbox_messages_due", "status", "not_before", "priority", "id"),)


class FollowUp(Base):
    """A scheduled follow-up ("is it fixed?", a shift reminder), claimed with a lease."""

    __tablename__ = "followups"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    rule: Mapped[str] = mapped_column(String(64))
    citizen_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    done_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        Index("ix_followups_due", "status", "due_at"),
        Index("ix_followups_subject", "subject_type", "subject_id", "status"),
    )


class StaffRole(Base):
    """An administrator, or a manager of one service (one row per service)."""

    __tablename__ = "staff_roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    service_id: Mapped[int | None] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    granted_by: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("citizen_id", "role", "service_id"),)


class Invite(Base):
    """A one-time invitation link ``t.me/<bot>?start=<code>`` that grants a role."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    service_ids: Mapped[dict[str, Any]]
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("citizens.id", ondelete="SET NULL"))
    used_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what, when: every administrator and manager action."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]]


class DigestSubscription(Base):
    """A staff member's digest: how often, at which local hour, for which services.

    ``service_ids`` empty means every service the person may see. The row is claimed
    with a lease when ``next_due_at`` comes, like a follow-up, and its
    ``next_due_at`` moves on in the transaction that queues the digest.
    """

    __tablename__ = "digest_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    citizen_id: Mapped[int] = mapped_column(
        ForeignKey("citizens.id", ondelete="CASCADE"), unique=True
    )
    frequency: Mapped[str] = mapped_column(String(8))
    weekday: Mapped[int | None] = mapped_column(Integer)
    hour: Mapped[int] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    service_ids: Mapped[list[int]] = mapped_column(JSONDocument)
    next_due_at: Mapped[datetime] = mapped_column(index=True)
    last_period_start: Mapped[datetime | None]
    last_period_end: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Area(Base):
    """A district or neighbourhood, as a GeoJSON Polygon or MultiPolygon (WGS 84).

    A pinned report is assigned to the area whose polygon holds the pin; the
    bounding box is a cheap first test before the polygon's.
    """

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    names: Mapped[dict[str, Any]]
    geometry: Mapped[dict[str, Any]]
    min_latitude: Mapped[float]
    min_longitude: Mapped[float]
    max_latitude: Mapped[float]
    max_longitude: Mapped[float]
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime]


class ConfigDocument(Base):
    """A configuration document administrators edit as a file (the report state table).

    One row per document, replaced whole on import; the audit log keeps who did it.
    """

    __tablename__ = "config_documents"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    author: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class Broadcast(Base):
    """A message an administrator sends to a segment of citizens through the outbox.

    ``composing`` while the administrator chooses the segment and writes the text,
    ``sending`` once confirmed (its outbox rows carry its id), ``done`` when none of
    them is left to send, or ``cancelled``. ``progress_message_id`` is the message in
    the administrator's chat that shows the counts as they change.
    """

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("citizens.id", ondelete="SET NULL"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)
    segment: Mapped[dict[str, Any]]
    text: Mapped[str | None] = mapped_column(Text)
    photo_file_id: Mapped[str | None] = mapped_column(String(256))
    status: Mapped[str] = mapped_column(String(16), default="composing", index=True)
    total: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any]]
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    confirmed_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
