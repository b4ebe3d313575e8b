"""The implementations of the flow registry's calls (queries and actions).

Each runs inside the update's unit of work, so an action's effects commit with
the conversation state that led to it, or not at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from babel.dates import format_datetime
from pydantic import BaseModel

from bot.followups.schedule import REPORT, schedule_event, schedule_signup
from bot.followups.texts import label, local_date, local_moment, report_place, shift_hours
from bot.i18n import Translator
from bot.managers.cards import send_new_report_cards
from bot.usecases import reports as report_cases
from bot.usecases.configuration import area_of_point
from dialogs import Call, CallKind, CallRegistry
from dialogs.registry import (
    AddReportDetailsParams,
    CreateReportParams,
    FollowReportParams,
    NearbyOpenReportsParams,
    OpportunitiesParams,
    RecordAttendanceParams,
    RecordFixAnswerParams,
    RecordRatingParams,
    ReportReferenceParams,
    SaveVolunteerProfileParams,
    ShiftParams,
    VolunteerSignupParams,
)
from storage.db import UnitOfWork
from storage.records import CitizenRecord

MAX_DESCRIPTION = 4000


@dataclass(slots=True, kw_only=True)
class CallContext:
    """What a call may use: the transaction, the citizen, the moment, the language.

    ``now`` is in the citizen's time zone (the administration's by default), so
    times shown to the citizen read as local times.
    """

    uow: UnitOfWork
    citizen: CitizenRecord
    language: str
    now: datetime
    translator: Translator
    preview: bool = False
    # Messages for other citizens that the call decided to send (e.g. a freed place).
    notices: list[tuple[int, str]] = field(default_factory=list)
    # In preview, what each skipped action would have done, for the administrator.
    described: list[str] = field(default_factory=list)


Implementation = Callable[[CallContext, Any], Awaitable[Mapping[str, Any]]]


class CallFailedError(Exception):
    """A call could not run (unknown name, parameters the registry refuses)."""


class CallRunner:
    """Validates a call's parameters against the registry and runs its implementation."""

    def __init__(
        self, registry: CallRegistry, implementations: Mapping[str, Implementation]
    ) -> None:
        problems = registry.check_implementations(implementations)
        if problems:
            raise ValueError("; ".join(problems))
        self._registry = registry
        self._implementations = dict(implementations)

    async def run(self, call: Call, context: CallContext) -> Mapping[str, Any]:
        """Run ``call``; in preview, actions are described instead of done."""
        spec = self._registry.get(call.name)
        if spec is None:
            raise CallFailedError(f"unknown call {call.name!r}")
        params = spec.params.model_validate(call.params)
        if context.preview and spec.kind is CallKind.ACTION:
            context.described.append(describe_action(call.name, params, context))
            return preview_result(spec.results)
        return await self._implementations[call.name](context, params)


# Actions with a sentence of their own; any other is named ("preview.would.other").
DESCRIBED_ACTIONS = frozenset(
    {
        "create_report",
        "follow_report",
        "record_rating",
        "save_volunteer_profile",
        "volunteer_signup",
        "record_fix_answer",
        "add_report_details",
        "record_attendance",
    }
)
MAX_PREVIEW_VALUE = 80


def _preview_value(value: Any) -> str:
    if isinstance(value, list):
        if all(isinstance(item, Mapping) and "file_id" in item for item in value):
            return str(len(value))
        return "[" + ", ".join(_preview_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        inner = (f"{key}={_preview_value(item)}" for key, item in value.items() if item is not None)
        return "(" + ", ".join(inner) + ")"
    text = str(value)
    return text if len(text) <= MAX_PREVIEW_VALUE else text[: MAX_PREVIEW_VALUE - 1] + "…"


def describe_action(name: str, params: BaseModel, context: CallContext) -> str:
    """What an action would have done with these parameters, in the citizen's language."""
    values = params.model_dump(mode="json", exclude_none=True)
    listed = ", ".join(f"{key}={_preview_value(value)}" for key, value in values.items())
    key = name if name in DESCRIBED_ACTIONS else "other"
    return context.translator.text(
        context.language, f"preview.would.{key}", name=name, params=listed or "-"
    )


def preview_result(fields: Mapping[str, str]) -> dict[str, Any]:
    """Stand-in results for an action run on a draft: plausible, clearly not real."""
    samples: dict[str, Any] = {
        "str": "PREVIEW",
        "int": 0,
        "float": 0.0,
        "bool": True,
        "list": [],
        "datetime": "2000-01-01T00:00:00+00:00",
    }
    result: dict[str, Any] = {}
    for path, kind in fields.items():
        target = result
        *parents, leaf = path.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = samples.get(kind)
    return result


def _label(names: Mapping[str, str], language: str) -> str:
    return names.get(language) or next(iter(names.values()), "")


async def categories(context: CallContext, _params: BaseModel) -> Mapping[str, Any]:
    """The report categories as options (labels in every language)."""
    found = await context.uow.repos.catalog.categories()
    return {"options": [{"value": c.code, "label": dict(c.names)} for c in found]}


async def services(context: CallContext, _params: BaseModel) -> Mapping[str, Any]:
    """The services a citizen may rate, as options."""
    found = await context.uow.repos.catalog.services()
    return {"options": [{"value": s.code, "label": dict(s.names)} for s in found]}


async def nearby_open_reports(
    context: CallContext, params: NearbyOpenReportsParams
) -> Mapping[str, Any]:
    """Open reports of the same category within the category's radius of the pin."""
    category = await context.uow.repos.catalog.category_by_code(params.category)
    if category is None:
        return {"count": 0}
    nearby = await context.uow.repos.reports.nearby_open(
        category_id=category.id,
        latitude=params.latitude,
        longitude=params.longitude,
        radius_m=category.radius_m,
    )
    if not nearby:
        return {"count": 0}
    report, distance = nearby[0]
    return {
        "count": len(nearby),
        "first": {
            "reference": report.reference,
            "category": _label(report.category_names, context.language),
            "distance_m": round(distance),
            "supporters": report.supporters,
        },
    }


async def create_report(context: CallContext, params: CreateReportParams) -> Mapping[str, Any]:
    """A new open report with its reference, due by the category's target."""
    repos = context.uow.repos
    category = await repos.catalog.category_by_code(params.category)
    if category is None:
        raise CallFailedError(f"unknown category {params.category!r}")
    location = params.location
    area_id = None
    if location is not None and location.latitude is not None and location.longitude is not None:
        area_id = await area_of_point(context.uow, location.latitude, location.longitude)
    report = await repos.reports.create(
        citizen_id=context.citizen.id,
        category_id=category.id,
        service_id=category.service_id,
        description=params.description.strip()[:MAX_DESCRIPTION],
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
        address=(location.address or None) if location else None,
        anonymous=params.anonymous,
        language=context.language,
        now=context.now,
        due_at=context.now + timedelta(days=category.target_days),
        area_id=area_id,
        category_code=category.code,
        category_names=category.names,
    )
    for photo in params.photos or []:
        # The bytes are fetched after the commit (see PhotoFetcher): no network
        # call while this transaction holds its locks.
        await repos.reports.add_photo(
            report.id,
            telegram_file_id=photo.file_id,
            content_type="image/jpeg",
            data=None,
            width=None,
            height=None,
            now=context.now,
        )
    # "Is it fixed?" and the like; ``now`` carries the citizen's time zone.
    await schedule_event(
        context.uow,
        event="report_created",
        subject_type=REPORT,
        subject_id=report.id,
        citizen_id=context.citizen.id,
        anchor=context.now,
        now=context.now,
        zone=context.now.tzinfo,
    )
    await send_new_report_cards(
        context.uow,
        report,
        translator=context.translator,
        timezone=context.now.tzinfo or UTC,
        now=context.now,
        photo_file_ids=[photo.file_id for photo in params.photos or []],
    )
    return {"reference": report.reference, "target_days": category.target_days}


async def follow_report(context: CallContext, params: FollowReportParams) -> Mapping[str, Any]:
    """The citizen supports an existing report ("me too") and follows it."""
    repos = context.uow.repos
    report = await repos.reports.by_reference(params.reference)
    if report is None:
        raise CallFailedError(f"unknown report {params.reference!r}")
    added = await repos.reports.follow(report.id, context.citizen.id, now=context.now)
    return {"supporters": report.supporters + (1 if added else 0)}


async def record_rating(context: CallContext, params: RecordRatingParams) -> Mapping[str, Any]:
    """Store a satisfaction rating for a service (and the report it followed, if any)."""
    repos = context.uow.repos
    service = await repos.catalog.service_by_code(params.service)
    if service is None:
        raise CallFailedError(f"unknown service {params.service!r}")
    report_id = None
    if params.report:
        report = await repos.reports.by_reference(params.report)
        report_id = report.id if report else None
    await repos.ratings.add(
        citizen_id=context.citizen.id,
        service_id=service.id,
        report_id=report_id,
        overall=params.overall,
        timeliness=params.timeliness,
        knowledge=params.knowledge,
        courtesy=params.courtesy,
        fairness=params.fairness,
        outcome=params.outcome,
        effort=params.effort,
        nps=params.nps,
        comment=(params.comment or "").strip()[:MAX_DESCRIPTION] or None,
        language=context.language,
        now=context.now,
    )
    return {"ok": True}


async def volunteer_profile(context: CallContext, _params: BaseModel) -> Mapping[str, Any]:
    """The citizen's volunteer profile, if they made one."""
    profile = await context.uow.repos.volunteering.profile(context.citizen.id)
    if profile is None:
        return {"exists": False, "skills": [], "areas": [], "availability": []}
    return {
        "exists": True,
        "skills": list(profile.skills),
        "areas": list(profile.areas),
        "availability": list(profile.availability),
    }


async def save_volunteer_profile(
    context: CallContext, params: SaveVolunteerProfileParams
) -> Mapping[str, Any]:
    """Create or replace the citizen's volunteer profile."""
    await context.uow.repos.volunteering.save_profile(
        context.citizen.id,
        skills=list(params.skills),
        areas=list(params.areas),
        availability=list(params.availability),
        contact_consent=params.contact_consent,
        now=context.now,
    )
    return {}


async def opportunities(context: CallContext, params: OpportunitiesParams) -> Mapping[str, Any]:
    """Upcoming opportunities that fit the skills and areas, with when, where and places."""
    found = await context.uow.repos.volunteering.upcoming(
        now=context.now, skills=list(params.skills), areas=list(params.areas)
    )
    t = context.translator
    options = []
    for opportunity in found:
        details = {}
        for language in t.languages:
            free = opportunity.slots - opportunity.confirmed
            places = (
                t.text(language, "volunteer.places_left", count=free)
                if free > 0
                else t.text(language, "volunteer.waiting_list")
            )
            when = format_datetime(
                opportunity.starts_at.astimezone(context.now.tzinfo),
                "EEE d MMM, HH:mm",
                locale=language,
            )
            details[language] = f"{when} · {opportunity.place} · {places}"
        options.append(
            {"value": opportunity.code, "label": dict(opportunity.titles), "details": details}
        )
    return {"options": options}


async def volunteer_signup(
    context: CallContext, params: VolunteerSignupParams
) -> Mapping[str, Any]:
    """A place on the opportunity, or on its waiting list when it is full."""
    repos = context.uow.repos
    opportunity = await repos.volunteering.opportunity_by_code(params.opportunity)
    if opportunity is None:
        raise CallFailedError(f"unknown opportunity {params.opportunity!r}")
    outcome = await repos.volunteering.signup(opportunity.id, context.citizen.id, now=context.now)
    if outcome.status in ("confirmed", "waitlisted") and outcome.signup_id is not None:
        # Waiting-list sign-ups get reminders too: their rules wait for a place.
        await schedule_signup(
            context.uow,
            signup_id=outcome.signup_id,
            citizen_id=context.citizen.id,
            starts_at=opportunity.starts_at,
            ends_at=opportunity.ends_at,
            now=context.now,
            zone=context.now.tzinfo,
        )
    return {
        "status": outcome.current_status or outcome.status,
        "position": outcome.position,
        "title": _label(opportunity.titles, context.language),
        "starts_at": opportunity.starts_at.isoformat(),
    }


async def report_summary(context: CallContext, params: ReportReferenceParams) -> Mapping[str, Any]:
    """A report the citizen follows, as "is it fixed?" describes it; others are not found."""
    repos = context.uow.repos
    report = await repos.reports.by_reference(params.reference)
    if report is None or not await repos.reports.is_follower(report.id, context.citizen.id):
        return {"found": False}
    language, zone = context.language, context.now.tzinfo
    assert zone is not None
    return {
        "found": True,
        "reference": report.reference,
        "category": label(report.category_names, language) or report.category_code,
        "location": report_place(report, language, context.translator),
        "created": local_date(report.created_at, language, zone),
        "status": report_cases.status_text(context.translator, language, report.status),
    }


async def record_fix_answer(
    context: CallContext, params: RecordFixAnswerParams
) -> Mapping[str, Any]:
    """The reporter's "is it fixed?" answer: reopen, or confirm and rate (use case)."""
    zone = context.now.tzinfo
    assert zone is not None
    outcome = await report_cases.record_fix_answer(
        context.uow,
        context.citizen,
        params.reference,
        params.answer,
        context.now,
        translator=context.translator,
        timezone=zone,
    )
    if outcome is None:
        raise CallFailedError(f"report {params.reference!r} is not the citizen's")
    return {"status": outcome.status, "reopened": outcome.reopened}


async def add_report_details(
    context: CallContext, params: AddReportDetailsParams
) -> Mapping[str, Any]:
    """A comment and photos the reporter adds after saying it is not fixed."""
    added = await report_cases.add_report_details(
        context.uow,
        context.citizen,
        params.reference,
        comment=params.comment,
        photo_file_ids=[photo.file_id for photo in params.photos or []],
        now=context.now,
        max_comment=MAX_DESCRIPTION,
    )
    if not added:
        raise CallFailedError(f"report {params.reference!r} is not the citizen's")
    return {}


async def shift_summary(context: CallContext, params: ShiftParams) -> Mapping[str, Any]:
    """One of the citizen's sign-ups with its shift; someone else's is not found."""
    subject = await context.uow.repos.followups.signup_subject(params.signup)
    if subject is None or subject.citizen_id != context.citizen.id:
        return {"found": False}
    language, zone = context.language, context.now.tzinfo
    assert zone is not None
    return {
        "found": True,
        "title": label(subject.titles, language),
        "when": local_moment(subject.starts_at, language, zone),
        "place": subject.place,
        "hours": shift_hours(subject, language),
    }


async def record_attendance(
    context: CallContext, params: RecordAttendanceParams
) -> Mapping[str, Any]:
    """Whether the volunteer came to their shift and for how long, for the coordinator."""
    repos = context.uow.repos
    subject = await repos.followups.signup_subject(params.signup)
    if subject is None or subject.citizen_id != context.citizen.id:
        raise CallFailedError("not the citizen's sign-up")
    hours = params.hours if params.attended else None
    ok = await repos.volunteering.record_attendance(params.signup, params.attended, hours)
    return {"ok": ok}


IMPLEMENTATIONS: dict[str, Implementation] = {
    "categories": categories,
    "services": services,
    "nearby_open_reports": nearby_open_reports,
    "create_report": create_report,
    "follow_report": follow_report,
    "record_rating": record_rating,
    "volunteer_profile": volunteer_profile,
    "save_volunteer_profile": save_volunteer_profile,
    "opportunities": opportunities,
    "volunteer_signup": volunteer_signup,
    "report_summary": report_summary,
    "record_fix_answer": record_fix_answer,
    "add_report_details": add_report_details,
    "shift_summary": shift_summary,
    "record_attendance": record_attendance,
}
