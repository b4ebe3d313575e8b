"""Volunteering: profiles, opportunities (shifts), sign-ups with a waiting list, attendance.

Every change to the sign-ups of an opportunity (sign-up, cancellation, promotion from
the waiting list) first locks the opportunity row (``SELECT ... FOR UPDATE`` on
PostgreSQL; on SQLite the unit of work already serialises writers), so places are
counted and given out one transaction at a time. The waiting list is ordered by
sign-up id: the oldest waiting sign-up is promoted first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Select,
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
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Citizen, Opportunity, Signup, VolunteerProfile
from storage.repositories._dialect import dialect_name, items_listed, items_shared

SCHEDULED: Final = "scheduled"
CANCELLED: Final = "cancelled"
CONFIRMED: Final = "confirmed"
WAITLISTED: Final = "waitlisted"
ACTIVE_SIGNUPS = (CONFIRMED, WAITLISTED)
# An area choice that matches every opportunity (the volunteer flow offers it).
ANYWHERE = "anywhere"

SignupStatus = Literal["confirmed", "waitlisted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class VolunteerProfileRecord:
    """What a volunteer can do, where and when, and whether organisers may contact them."""

    citizen_id: int
    skills: tuple[str, ...]
    areas: tuple[str, ...]
    availability: tuple[str, ...]
    contact_consent: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OpportunityRecord:
    """A volunteering shift with how many places are taken and how many wait."""

    id: int
    code: str
    titles: dict[str, str]
    descriptions: dict[str, str]
    skills: tuple[str, ...]
    area: str | None
    place: str
    starts_at: datetime
    ends_at: datetime
    slots: int
    status: str
    confirmed: int
    waitlisted: int

    @property
    def places_left(self) -> int:
        """Places still free (0 when full, or over-full after the slots were lowered)."""
        return max(0, self.slots - self.confirmed)


@dataclass(frozen=True, slots=True, kw_only=True)
class SignupOutcome:
    """The result of a sign-up.

    ``status`` is ``"already"`` when the citizen already had an active sign-up for the
    opportunity; ``current_status`` is then that sign-up's status (otherwise it equals
    ``status``). ``position`` is the 1-based place on the waiting list, or 0.
    """

    status: Literal["confirmed", "waitlisted", "already", "closed"]
    current_status: Literal["confirmed", "waitlisted"] | None
    position: int
    signup_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PromotedSignup:
    """A waiting sign-up that just got a confirmed place (the volunteer must be told)."""

    signup_id: int
    citizen_id: int
    opportunity_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOutcome:
    """The result of a cancellation: whether it happened and who got the freed place."""

    cancelled: bool
    promoted: PromotedSignup | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CitizenSignupRecord:
    """One of a citizen's active sign-ups, with what they need to know about the shift."""

    signup_id: int
    opportunity_id: int
    opportunity_code: str
    titles: dict[str, str]
    place: str
    starts_at: datetime
    ends_at: datetime
    opportunity_status: str
    status: SignupStatus
    position: int
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OpportunitySignupRecord:
    """A sign-up as a coordinator sees it: a pseudonym, never a Telegram identity."""

    signup_id: int
    citizen_id: int | None
    pseudonym: str | None
    status: SignupStatus
    position: int
    created_at: datetime
    attended: bool | None
    hours: float | None


def _items(values: Iterable[str]) -> dict[str, Any]:
    """A list of codes as the JSON object the columns hold, without repeats."""
    return {"items": list(dict.fromkeys(values))}


def _codes(document: Mapping[str, Any] | None) -> tuple[str, ...]:
    if not document:
        return ()
    return tuple(str(value) for value in document.get("items") or ())


def _texts(document: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(lang): str(text) for lang, text in (document or {}).items()}


def _signup_count(status: str) -> ScalarSelect[int]:
    """Sign-ups of the enclosing query's opportunity in ``status`` (an index range count)."""
    return (
        select(func.count())
        .select_from(Signup)
        .where(Signup.opportunity_id == Opportunity.id, Signup.status == status)
        .correlate(Opportunity)
        .scalar_subquery()
    )


def _waitlist_position() -> ScalarSelect[int]:
    """The enclosing query's waiting sign-up's 1-based place in its queue."""
    ahead = Signup.__table__.alias("ahead")
    return (
        select(func.count())
        .select_from(ahead)
        .where(
            ahead.c.opportunity_id == Signup.opportunity_id,
            ahead.c.status == WAITLISTED,
            ahead.c.id <= Signup.id,
        )
        .correlate(Signup)
        .scalar_subquery()
    )


def _select_opportunities() -> Select[Any]:
    # Plain columns, not entities: the identity map would hide changes made by
    # UPDATE statements earlier in the same unit of work.
    return select(
        Opportunity.id,
        Opportunity.code,
        Opportunity.titles,
        Opportunity.descriptions,
        Opportunity.skills,
        Opportunity.area,
        Opportunity.place,
        Opportunity.starts_at,
        Opportunity.ends_at,
        Opportunity.slots,
        Opportunity.status,
        _signup_count(CONFIRMED).label("confirmed"),
        _signup_count(WAITLISTED).label("waitlisted"),
    )


def _opportunity(row: Any) -> OpportunityRecord:
    return OpportunityRecord(
        id=row.id,
        code=row.code,
        titles=_texts(row.titles),
        descriptions=_texts(row.descriptions),
        skills=_codes(row.skills),
        area=row.area,
        place=row.place,
        starts_at=row.starts_at,
        ends_at=row.ends_at,
        slots=row.slots,
        status=row.status,
        confirmed=int(row.confirmed or 0),
        waitlisted=int(row.waitlisted or 0),
    )


def _rowcount(result: Any) -> int:
    return int(result.rowcount)


class VolunteeringRepository:
    """Reads and writes volunteer profiles, opportunities and sign-ups."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # Profiles

    async def profile(self, citizen_id: int) -> VolunteerProfileRecord | None:
        """The citizen's volunteer profile, if they made one."""
        row = (
            await self._session.execute(
                select(
                    VolunteerProfile.citizen_id,
                    VolunteerProfile.skills,
                    VolunteerProfile.areas,
                    VolunteerProfile.availability,
                    VolunteerProfile.contact_consent,
                    VolunteerProfile.updated_at,
                ).where(VolunteerProfile.citizen_id == citizen_id)
            )
        ).one_or_none()
        if row is None:
            return None
        return VolunteerProfileRecord(
            citizen_id=row.citizen_id,
            skills=_codes(row.skills),
            areas=_codes(row.areas),
            availability=_codes(row.availability),
            contact_consent=row.contact_consent,
            updated_at=row.updated_at,
        )

    async def save_profile(
        self,
        citizen_id: int,
        *,
        skills: Sequence[str],
        areas: Sequence[str],
        availability: Sequence[str],
        contact_consent: bool,
        now: datetime,
    ) -> None:
        """Create or replace the citizen's profile (safe against a concurrent save)."""
        values = {
            "citizen_id": citizen_id,
            "skills": _items(skills),
            "areas": _items(areas),
            "availability": _items(availability),
            "contact_consent": contact_consent,
            "updated_at": now,
        }
        replaced = [key for key in values if key != "citizen_id"]
        if dialect_name(self._session) == "postgresql":
            on_postgresql = postgresql.insert(VolunteerProfile).values(values)
            statement: Any = on_postgresql.on_conflict_do_update(
                index_elements=[VolunteerProfile.citizen_id],
                set_={key: on_postgresql.excluded[key] for key in replaced},
            )
        else:
            on_sqlite = sqlite.insert(VolunteerProfile).values(values)
            statement = on_sqlite.on_conflict_do_update(
                index_elements=[VolunteerProfile.citizen_id],
                set_={key: on_sqlite.excluded[key] for key in replaced},
            )
        await self._session.execute(statement)

    # Opportunities

    async def add_opportunity(
        self,
        *,
        code: str,
        titles: Mapping[str, str],
        descriptions: Mapping[str, str],
        skills: Sequence[str],
        area: str | None,
        place: str,
        starts_at: datetime,
        ends_at: datetime,
        slots: int,
    ) -> OpportunityRecord:
        """Create a scheduled opportunity.

        Raises ``ValueError`` when it ends before it starts or has negative slots;
        a code already used fails on the unique constraint (look it up first).
        """
        if ends_at <= starts_at:
            raise ValueError("an opportunity must end after it starts")
        if slots < 0:
            raise ValueError("slots cannot be negative")
        result = await self._session.execute(
            insert(Opportunity)
            .values(
                code=code,
                titles=dict(titles),
                descriptions=dict(descriptions),
                skills=_items(skills),
                area=area,
                place=place,
                starts_at=starts_at,
                ends_at=ends_at,
                slots=slots,
                status=SCHEDULED,
            )
            .returning(Opportunity.id)
        )
        created = await self.opportunity_by_id(result.scalar_one())
        assert created is not None
        return created

    async def opportunity_by_code(self, code: str) -> OpportunityRecord | None:
        """The opportunity with this code, with its counts, if any."""
        row = (
            await self._session.execute(_select_opportunities().where(Opportunity.code == code))
        ).one_or_none()
        return None if row is None else _opportunity(row)

    async def opportunity_by_id(self, opportunity_id: int) -> OpportunityRecord | None:
        """The opportunity with this id, with its counts, if any."""
        row = (
            await self._session.execute(
                _select_opportunities().where(Opportunity.id == opportunity_id)
            )
        ).one_or_none()
        return None if row is None else _opportunity(row)

    async def update_opportunity_time(
        self, opportunity_id: int, starts_at: datetime, ends_at: datetime
    ) -> bool:
        """Move an opportunity; False when it does not exist.

        Its sign-ups stay: tell them with :meth:`signups_for_opportunity`.
        """
        if ends_at <= starts_at:
            raise ValueError("an opportunity must end after it starts")
        result = await self._session.execute(
            update(Opportunity)
            .where(Opportunity.id == opportunity_id)
            .values(starts_at=starts_at, ends_at=ends_at)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def cancel_opportunity(self, opportunity_id: int) -> bool:
        """Cancel a scheduled opportunity; False when it is unknown or already cancelled.

        Sign-ups keep their status (they are the history of who would have come);
        :meth:`signups_for_opportunity` lists the volunteers to tell.
        """
        result = await self._session.execute(
            update(Opportunity)
            .where(Opportunity.id == opportunity_id, Opportunity.status == SCHEDULED)
            .values(status=CANCELLED)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def update_opportunity_details(
        self,
        opportunity_id: int,
        *,
        titles: Mapping[str, str],
        descriptions: Mapping[str, str],
        skills: Sequence[str],
        area: str | None,
        place: str,
        slots: int,
    ) -> bool:
        """Change what an opportunity says (not its time: see update_opportunity_time)."""
        if slots < 0:
            raise ValueError("slots cannot be negative")
        result = await self._session.execute(
            update(Opportunity)
            .where(Opportunity.id == opportunity_id)
            .values(
                titles=dict(titles),
                descriptions=dict(descriptions),
                skills=_items(skills),
                area=area,
                place=place,
                slots=slots,
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    async def fill_free_places(self, opportunity_id: int) -> list[PromotedSignup]:
        """Move waiting volunteers up while places are free (after slots were raised)."""
        await self._lock_opportunity(opportunity_id)
        opportunity = await self.opportunity_by_id(opportunity_id)
        if opportunity is None or opportunity.status != SCHEDULED:
            return []
        promoted = []
        for _ in range(max(opportunity.slots - opportunity.confirmed, 0)):
            moved = await self._promote_first_waiting(opportunity_id)
            if moved is None:
                break
            promoted.append(moved)
        return promoted

    async def since(self, start: datetime) -> list[OpportunityRecord]:
        """Every opportunity starting at or after ``start``, cancelled ones too, by time."""
        result = await self._session.execute(
            _select_opportunities()
            .where(Opportunity.starts_at >= start)
            .order_by(Opportunity.starts_at, Opportunity.id)
        )
        return [_opportunity(row) for row in result.all()]

    async def count_opportunities(self) -> int:
        """How many opportunities exist, whatever their status."""
        count = await self._session.scalar(select(func.count()).select_from(Opportunity))
        return int(count or 0)

    async def upcoming(
        self,
        *,
        now: datetime,
        skills: Sequence[str],
        areas: Sequence[str],
        limit: int = 50,
    ) -> list[OpportunityRecord]:
        """Scheduled opportunities starting after ``now`` that fit, soonest first.

        An opportunity fits when it shares a skill with ``skills`` (or either list
        is empty) and its area is one of ``areas`` (or ``areas`` is empty or holds
        ``"anywhere"``, or the opportunity has no area).
        """
        statement = _select_opportunities().where(
            Opportunity.status == SCHEDULED, Opportunity.starts_at > now
        )
        wanted_skills = list(dict.fromkeys(skills))
        if wanted_skills:
            statement = statement.where(self._fits_skills(wanted_skills))
        wanted_areas = list(dict.fromkeys(areas))
        if wanted_areas and ANYWHERE not in wanted_areas:
            statement = statement.where(
                or_(Opportunity.area.is_(None), Opportunity.area.in_(wanted_areas))
            )
        statement = statement.order_by(Opportunity.starts_at, Opportunity.id).limit(limit)
        result = await self._session.execute(statement)
        return [_opportunity(row) for row in result.all()]

    async def between(
        self, start: datetime, end: datetime, *, limit: int = 30
    ) -> list[OpportunityRecord]:
        """Opportunities starting in ``[start, end)``, cancelled ones too, soonest first."""
        statement = (
            _select_opportunities()
            .where(Opportunity.starts_at >= start, Opportunity.starts_at < end)
            .order_by(Opportunity.starts_at, Opportunity.id)
            .limit(limit)
        )
        result = await self._session.execute(statement)
        return [_opportunity(row) for row in result.all()]

    def _fits_skills(self, skills: list[str]) -> ColumnElement[bool]:
        listed = items_listed(self._session, Opportunity.skills)
        return or_(~listed, items_shared(self._session, Opportunity.skills, skills))

    # Sign-ups

    async def _lock_opportunity(self, opportunity_id: int) -> Any:
        """Lock the opportunity row until the transaction ends (no-op on SQLite)."""
        return (
            await self._session.execute(
                select(Opportunity.status, Opportunity.slots, Opportunity.starts_at)
                .where(Opportunity.id == opportunity_id)
                .with_for_update()
            )
        ).one_or_none()

    async def _count(self, opportunity_id: int, status: str) -> int:
        count = await self._session.scalar(
            select(func.count())
            .select_from(Signup)
            .where(Signup.opportunity_id == opportunity_id, Signup.status == status)
        )
        return int(count or 0)

    async def _position(self, opportunity_id: int, signup_id: int) -> int:
        count = await self._session.scalar(
            select(func.count())
            .select_from(Signup)
            .where(
                Signup.opportunity_id == opportunity_id,
                Signup.status == WAITLISTED,
                Signup.id <= signup_id,
            )
        )
        return int(count or 0)

    async def signup(self, opportunity_id: int, citizen_id: int, *, now: datetime) -> SignupOutcome:
        """Give the citizen a place, or a place on the waiting list when it is full.

        Returns ``"already"`` (with the existing sign-up) when the citizen has an
        active sign-up for it, and ``"closed"`` (no sign-up) when the opportunity is
        unknown, cancelled or has started.
        """
        opportunity = await self._lock_opportunity(opportunity_id)
        if opportunity is None or opportunity.status != SCHEDULED or opportunity.starts_at <= now:
            return SignupOutcome(status="closed", current_status=None, position=0, signup_id=None)
        existing = (
            await self._session.execute(
                select(Signup.id, Signup.status)
                .where(
                    Signup.opportunity_id == opportunity_id,
                    Signup.citizen_id == citizen_id,
                    Signup.status.in_(ACTIVE_SIGNUPS),
                )
                .order_by(Signup.id)
                .limit(1)
            )
        ).one_or_none()
        if existing is not None:
            waiting = existing.status == WAITLISTED
            return SignupOutcome(
                status="already",
                current_status=WAITLISTED if waiting else CONFIRMED,
                position=await self._position(opportunity_id, existing.id) if waiting else 0,
                signup_id=existing.id,
            )
        confirmed = await self._count(opportunity_id, CONFIRMED)
        status: SignupStatus = CONFIRMED if confirmed < opportunity.slots else WAITLISTED
        position = 0
        if status == WAITLISTED:
            position = await self._count(opportunity_id, WAITLISTED) + 1
        result = await self._session.execute(
            insert(Signup)
            .values(
                opportunity_id=opportunity_id,
                citizen_id=citizen_id,
                status=status,
                created_at=now,
            )
            .returning(Signup.id)
        )
        return SignupOutcome(
            status=status,
            current_status=status,
            position=position,
            signup_id=result.scalar_one(),
        )

    async def cancel_signup(
        self, signup_id: int, citizen_id: int, *, now: datetime
    ) -> CancelOutcome:
        """Cancel the citizen's own active sign-up; a freed place goes to the first waiting.

        The oldest waiting sign-up (that still belongs to a citizen) is confirmed when
        the opportunity is scheduled and has not started. Someone else's sign-up, or
        one already cancelled, is left alone (``cancelled`` is False).
        """
        nothing = CancelOutcome(cancelled=False, promoted=None)
        opportunity_id = await self._session.scalar(
            select(Signup.opportunity_id).where(
                Signup.id == signup_id, Signup.citizen_id == citizen_id
            )
        )
        if opportunity_id is None:
            return nothing
        opportunity = await self._lock_opportunity(opportunity_id)
        # Read the status again under the lock: a concurrent cancel may have won.
        status = await self._session.scalar(
            select(Signup.status).where(Signup.id == signup_id, Signup.citizen_id == citizen_id)
        )
        if opportunity is None or status not in ACTIVE_SIGNUPS:
            return nothing
        await self._session.execute(
            update(Signup)
            .where(Signup.id == signup_id)
            .values(status=CANCELLED, cancelled_at=now)
            .execution_options(synchronize_session=False)
        )
        promoted = None
        if (
            status == CONFIRMED
            and opportunity.status == SCHEDULED
            and opportunity.starts_at > now
            and await self._count(opportunity_id, CONFIRMED) < opportunity.slots
        ):
            promoted = await self._promote_first_waiting(opportunity_id)
        return CancelOutcome(cancelled=True, promoted=promoted)

    async def _promote_first_waiting(self, opportunity_id: int) -> PromotedSignup | None:
        first = (
            await self._session.execute(
                select(Signup.id, Signup.citizen_id)
                .where(
                    Signup.opportunity_id == opportunity_id,
                    Signup.status == WAITLISTED,
                    Signup.citizen_id.is_not(None),
                )
                .order_by(Signup.id)
                .limit(1)
            )
        ).one_or_none()
        if first is None:
            return None
        await self._session.execute(
            update(Signup)
            .where(Signup.id == first.id)
            .values(status=CONFIRMED)
            .execution_options(synchronize_session=False)
        )
        return PromotedSignup(
            signup_id=first.id, citizen_id=first.citizen_id, opportunity_id=opportunity_id
        )

    async def signups_for_citizen(
        self, citizen_id: int, *, now: datetime
    ) -> list[CitizenSignupRecord]:
        """The citizen's active sign-ups for opportunities not yet ended, soonest first.

        Cancelled opportunities are included (``opportunity_status``) so the bot
        can say so.
        """
        result = await self._session.execute(
            select(
                Signup.id,
                Signup.opportunity_id,
                Signup.status,
                Signup.created_at,
                Opportunity.code,
                Opportunity.titles,
                Opportunity.place,
                Opportunity.starts_at,
                Opportunity.ends_at,
                Opportunity.status.label("opportunity_status"),
                case((Signup.status == WAITLISTED, _waitlist_position()), else_=literal(0)).label(
                    "position"
                ),
            )
            .join(Opportunity, Opportunity.id == Signup.opportunity_id)
            .where(
                Signup.citizen_id == citizen_id,
                Signup.status.in_(ACTIVE_SIGNUPS),
                Opportunity.ends_at > now,
            )
            .order_by(Opportunity.starts_at, Signup.id)
        )
        return [
            CitizenSignupRecord(
                signup_id=row.id,
                opportunity_id=row.opportunity_id,
                opportunity_code=row.code,
                titles=_texts(row.titles),
                place=row.place,
                starts_at=row.starts_at,
                ends_at=row.ends_at,
                opportunity_status=row.opportunity_status,
                status=row.status,
                position=int(row.position or 0),
                created_at=row.created_at,
            )
            for row in result.all()
        ]

    async def signups_for_opportunity(self, opportunity_id: int) -> list[OpportunitySignupRecord]:
        """Active sign-ups of an opportunity: the confirmed, then the waiting list, in order."""
        position = func.row_number().over(partition_by=Signup.status, order_by=Signup.id)
        result = await self._session.execute(
            select(
                Signup.id,
                Signup.citizen_id,
                Citizen.pseudonym,
                Signup.status,
                Signup.created_at,
                Signup.attended,
                Signup.hours,
                position.label("position"),
            )
            .outerjoin(Citizen, Citizen.id == Signup.citizen_id)
            .where(Signup.opportunity_id == opportunity_id, Signup.status.in_(ACTIVE_SIGNUPS))
            .order_by(case((Signup.status == CONFIRMED, 0), else_=1), Signup.id)
        )
        return [
            OpportunitySignupRecord(
                signup_id=row.id,
                citizen_id=row.citizen_id,
                pseudonym=row.pseudonym,
                status=row.status,
                position=int(row.position) if row.status == WAITLISTED else 0,
                created_at=row.created_at,
                attended=row.attended,
                hours=row.hours,
            )
            for row in result.all()
        ]

    async def record_attendance(self, signup_id: int, attended: bool, hours: float | None) -> bool:
        """Record whether an active sign-up's volunteer came and for how long.

        Hours are kept only when they came. False when the sign-up is unknown or
        cancelled; negative hours raise ``ValueError``.
        """
        if hours is not None and hours < 0:
            raise ValueError("hours cannot be negative")
        result = await self._session.execute(
            update(Signup)
            .where(Signup.id == signup_id, Signup.status.in_(ACTIVE_SIGNUPS))
            .values(attended=attended, hours=hours if attended else None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) > 0

    # The citizen's own data

    async def export_for_citizen(self, citizen_id: int) -> list[dict[str, Any]]:
        """Everything these tables hold about the citizen, as JSON-able dicts (/mydata)."""
        exported: list[dict[str, Any]] = []
        profile = await self.profile(citizen_id)
        if profile is not None:
            exported.append(
                {
                    "kind": "volunteer_profile",
                    "skills": list(profile.skills),
                    "areas": list(profile.areas),
                    "availability": list(profile.availability),
                    "contact_consent": profile.contact_consent,
                    "updated_at": profile.updated_at.isoformat(),
                }
            )
        result = await self._session.execute(
            select(
                Signup.id,
                Signup.status,
                Signup.created_at,
                Signup.cancelled_at,
                Signup.attended,
                Signup.hours,
                Opportunity.code,
                Opportunity.titles,
                Opportunity.place,
                Opportunity.starts_at,
                Opportunity.ends_at,
            )
            .join(Opportunity, Opportunity.id == Signup.opportunity_id)
            .where(Signup.citizen_id == citizen_id)
            .order_by(Signup.id)
        )
        for row in result.all():
            exported.append(
                {
                    "kind": "volunteer_signup",
                    "id": row.id,
                    "opportunity": row.code,
                    "titles": _texts(row.titles),
                    "place": row.place,
                    "starts_at": row.starts_at.isoformat(),
                    "ends_at": row.ends_at.isoformat(),
                    "status": row.status,
                    "signed_up_at": row.created_at.isoformat(),
                    "cancelled_at": None
                    if row.cancelled_at is None
                    else row.cancelled_at.isoformat(),
                    "attended": row.attended,
                    "hours": row.hours,
                }
            )
        return exported

    async def anonymise_citizen(self, citizen_id: int) -> int:
        """Erase the citizen from volunteering (/forget); return the rows touched.

        The profile is deleted; sign-ups stay (attendance statistics) without the
        citizen. Statuses are not changed: cancel the citizen's active sign-ups first
        (:meth:`signups_for_citizen`, :meth:`cancel_signup`) so freed places go to the
        waiting list and the promoted volunteers are told.
        """
        deleted = await self._session.execute(
            delete(VolunteerProfile)
            .where(VolunteerProfile.citizen_id == citizen_id)
            .execution_options(synchronize_session=False)
        )
        detached = await self._session.execute(
            update(Signup)
            .where(Signup.citizen_id == citizen_id)
            .values(citizen_id=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(deleted) + _rowcount(detached)
