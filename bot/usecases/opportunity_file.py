"""Volunteer opportunities as a file coordinators edit: create, change, move, cancel.

The file lists shifts by code; times are in the administration's time zone::

    opportunities:
      - code: park-cleanup
        titles: {en: Saturday park clean-up, fr: Nettoyage du parc}
        descriptions: {en: Pick litter…, fr: Ramassage…}
        skills: [clean_up]
        area: centre            # optional
        place: Central Park, main gate
        starts: 2026-12-05 09:30
        ends: 2026-12-05 12:30  # or just 12:30 for the same day
        slots: 12
        status: scheduled       # or cancelled

An import creates what is new and changes what differs, in one transaction:
a time moved by more than five minutes tells every signed-up volunteer (reminders
move), ``cancelled`` tells them and drops reminders, raised slots move the waiting
list up (and tell those promoted). Shifts missing from the file are left alone; a
cancelled shift is not brought back (give the new one another code). Problems are
reported as ``file:line: reason`` and nothing is changed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import yaml

from bot.configfile import (
    ConfigFileError,
    ConfigProblem,
    ImportSummary,
    YamlDocument,
    audit_import,
)
from bot.i18n import Translator
from bot.notices import queue_promotion_notices
from bot.usecases.volunteering import cancel_opportunity, move_opportunity, schedule_promoted
from storage.db import UnitOfWork
from storage.repositories.volunteering import OpportunityRecord

KEYS: Final = (
    "code",
    "titles",
    "descriptions",
    "skills",
    "area",
    "place",
    "starts",
    "ends",
    "slots",
    "status",
)
CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
SKILL = re.compile(r"[a-z0-9_]{1,32}")
MAX_TITLE = 100
MAX_DESCRIPTION = 1000
MAX_PLACE = 300
MAX_SLOTS = 10_000
EXPORT_SINCE = timedelta(days=30)
MOMENT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpportunitySpec:
    """One shift as the file describes it."""

    code: str
    titles: dict[str, str]
    descriptions: dict[str, str]
    skills: tuple[str, ...]
    area: str | None
    place: str
    starts_at: datetime
    ends_at: datetime
    slots: int
    cancelled: bool
    line: int


@dataclass(slots=True)
class _Changes:
    """What an import does, gathered as it goes (then frozen into an ImportSummary)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    rescheduled: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    unchanged: int = 0
    notified: int = 0
    promoted: int = 0

    def summary(self) -> ImportSummary:
        return ImportSummary(
            kind="opportunities",
            created=tuple(self.created),
            updated=tuple(self.updated),
            rescheduled=tuple(self.rescheduled),
            cancelled=tuple(self.cancelled),
            unchanged=self.unchanged,
            notified=self.notified,
            promoted=self.promoted,
        )


def _texts(
    document: YamlDocument,
    path: tuple[str | int, ...],
    raw: Any,
    languages: Sequence[str],
    limit: int,
) -> dict[str, str]:
    if not isinstance(raw, dict):
        document.add(path, f"'{path[-1]}' must map each language ({', '.join(languages)}) to text")
        return {}
    for language in raw:
        if language not in languages:
            document.add((*path, language), f"unknown language '{language}'", key=True)
    texts = {}
    for language in languages:
        value = raw.get(language)
        if not isinstance(value, str) or not value.strip() or len(value) > limit:
            document.add(path, f"needs a text in '{language}' (1 to {limit} characters)")
        else:
            texts[language] = value.strip()
    return texts


def _moment(raw: Any, zone: ZoneInfo, day: date | None = None) -> datetime | None:
    """A local date and time: '2026-12-05 09:30' (or '12:30' on ``day``)."""
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=zone) if raw.tzinfo is None else raw
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    try:
        return datetime.strptime(text, MOMENT).replace(tzinfo=zone)
    except ValueError:
        pass
    if day is not None:
        try:
            clock = datetime.strptime(text, "%H:%M").time()
        except ValueError:
            return None
        return datetime.combine(day, clock, tzinfo=zone)
    return None


def parse_opportunities(
    source: str, *, filename: str, languages: Sequence[str], zone: ZoneInfo
) -> list[OpportunitySpec]:
    """Validate an opportunities file; raises ConfigFileError with every problem."""
    document = YamlDocument(source, filename)
    data = document.data
    document.raise_if_problems()
    if not isinstance(data, dict) or not isinstance(data.get("opportunities"), list):
        document.add((), "an opportunities file is a mapping with a list of 'opportunities'")
        document.raise_if_problems()
    for key in data:
        if key != "opportunities":
            document.add((key,), f"unknown key '{key}'", key=True)
    specs: list[OpportunitySpec] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["opportunities"]):
        path: tuple[str | int, ...] = ("opportunities", index)
        if not isinstance(raw, dict):
            document.add(path, "an opportunity is a mapping of " + ", ".join(KEYS))
            continue
        for key in raw:
            if key not in KEYS:
                document.add((*path, key), f"unknown key '{key}'", key=True)
        code = raw.get("code")
        if not isinstance(code, str) or not CODE.fullmatch(code):
            document.add((*path, "code"), "a code is 1 to 64 lowercase letters, digits, '-' or '_'")
            code = None
        elif code in seen:
            document.add((*path, "code"), f"'{code}' is listed twice (first at line {seen[code]})")
            code = None
        else:
            seen[code] = document.line((*path, "code"))
        titles = _texts(document, (*path, "titles"), raw.get("titles"), languages, MAX_TITLE)
        descriptions = _texts(
            document, (*path, "descriptions"), raw.get("descriptions"), languages, MAX_DESCRIPTION
        )
        skills = raw.get("skills", [])
        if not isinstance(skills, list) or not all(
            isinstance(s, str) and SKILL.fullmatch(s) for s in skills
        ):
            document.add((*path, "skills"), "'skills' is a list of codes (a-z, 0-9, _)")
            skills = []
        area = raw.get("area")
        if area is not None and (not isinstance(area, str) or not CODE.fullmatch(area)):
            document.add((*path, "area"), "'area' is an area code, or leave it out")
            area = None
        place = raw.get("place")
        if not isinstance(place, str) or not place.strip() or len(place) > MAX_PLACE:
            document.add((*path, "place"), f"'place' is 1 to {MAX_PLACE} characters")
            place = ""
        starts = _moment(raw.get("starts"), zone)
        if starts is None:
            document.add((*path, "starts"), "'starts' is a local date and time: 2026-12-05 09:30")
        ends = _moment(raw.get("ends"), zone, starts.date() if starts else None)
        if starts is not None and ends is None:
            document.add((*path, "ends"), "'ends' is a local time (12:30) or date and time")
        elif starts is not None and ends is not None and ends <= starts:
            document.add((*path, "ends"), "a shift must end after it starts")
        slots = raw.get("slots")
        if not isinstance(slots, int) or isinstance(slots, bool) or not 0 <= slots <= MAX_SLOTS:
            document.add((*path, "slots"), f"'slots' is a whole number from 0 to {MAX_SLOTS}")
            slots = 0
        status = raw.get("status", "scheduled")
        if status not in ("scheduled", "cancelled"):
            document.add((*path, "status"), "'status' is scheduled or cancelled")
        if code is not None and starts is not None and ends is not None:
            specs.append(
                OpportunitySpec(
                    code=code,
                    titles=titles,
                    descriptions=descriptions,
                    skills=tuple(dict.fromkeys(skills)),
                    area=area,
                    place=place.strip(),
                    starts_at=starts,
                    ends_at=ends,
                    slots=slots,
                    cancelled=status == "cancelled",
                    line=document.line(path),
                )
            )
    document.raise_if_problems()
    return specs


def _details_differ(spec: OpportunitySpec, current: OpportunityRecord) -> bool:
    return (
        spec.titles != current.titles
        or spec.descriptions != current.descriptions
        or spec.skills != current.skills
        or spec.area != current.area
        or spec.place != current.place
        or spec.slots != current.slots
    )


def _check_against_database(
    filename: str, specs: Sequence[OpportunitySpec], current: dict[str, OpportunityRecord]
) -> list[ConfigProblem]:
    problems = []
    for spec in specs:
        existing = current.get(spec.code)
        if existing is None:
            continue
        if existing.status == "cancelled" and not spec.cancelled:
            problems.append(
                ConfigProblem(
                    filename,
                    spec.line,
                    f"'{spec.code}' was cancelled; give a new shift another code",
                )
            )
        if spec.slots < existing.confirmed and not spec.cancelled:
            problems.append(
                ConfigProblem(
                    filename,
                    spec.line,
                    f"'{spec.code}' has {existing.confirmed} volunteers signed up: "
                    "slots cannot go below that",
                )
            )
    return problems


async def import_opportunities(
    uow: UnitOfWork,
    source: str,
    *,
    filename: str,
    translator: Translator,
    zone: ZoneInfo,
    actor: str,
    now: datetime,
    apply: bool = True,
) -> ImportSummary:
    """Validate and (with ``apply``) import the file; see the module's docstring.

    Raises :class:`ConfigFileError` (``file:line: reason`` problems), changing nothing.
    """
    specs = parse_opportunities(
        source, filename=filename, languages=translator.languages, zone=zone
    )
    repos = uow.repos.volunteering
    current: dict[str, OpportunityRecord] = {}
    for spec in specs:
        existing = await repos.opportunity_by_code(spec.code)
        if existing is not None:
            current[spec.code] = existing
    problems = _check_against_database(filename, specs, current)
    if problems:
        raise ConfigFileError(problems)
    result = _Changes()
    for spec in specs:
        existing = current.get(spec.code)
        if existing is None:
            result.created.append(spec.code)
            if apply:
                created = await repos.add_opportunity(
                    code=spec.code,
                    titles=spec.titles,
                    descriptions=spec.descriptions,
                    skills=spec.skills,
                    area=spec.area,
                    place=spec.place,
                    starts_at=spec.starts_at,
                    ends_at=spec.ends_at,
                    slots=spec.slots,
                )
                if spec.cancelled:
                    await repos.cancel_opportunity(created.id)
            continue
        if existing.status == "cancelled":
            result.unchanged += 1
            continue
        touched = False
        if _details_differ(spec, existing):
            touched = True
            result.updated.append(spec.code)
            if apply:
                await repos.update_opportunity_details(
                    existing.id,
                    titles=spec.titles,
                    descriptions=spec.descriptions,
                    skills=spec.skills,
                    area=spec.area,
                    place=spec.place,
                    slots=spec.slots,
                )
                promoted = await repos.fill_free_places(existing.id)
                for item in promoted:
                    await schedule_promoted(uow, item, now=now, timezone=zone)
                await queue_promotion_notices(uow, translator, zone, promoted, now=now)
                result.promoted += len(promoted)
        if (spec.starts_at, spec.ends_at) != (existing.starts_at, existing.ends_at):
            touched = True
            result.rescheduled.append(spec.code)
            if apply:
                change = await move_opportunity(
                    uow,
                    existing.id,
                    spec.starts_at,
                    spec.ends_at,
                    now,
                    translator=translator,
                    timezone=zone,
                )
                result.notified += change.notified if change else 0
        if spec.cancelled:
            touched = True
            result.cancelled.append(spec.code)
            if apply:
                change = await cancel_opportunity(
                    uow, existing.id, now, translator=translator, timezone=zone
                )
                result.notified += change.notified if change else 0
        if not touched:
            result.unchanged += 1
    summary = result.summary()
    if apply and summary.changed:
        await audit_import(uow, summary, actor=actor, filename=filename, now=now)
    return summary


async def export_opportunities(uow: UnitOfWork, *, zone: ZoneInfo, now: datetime) -> str:
    """The shifts of the last 30 days and to come, as the file coordinators edit."""
    items = []
    for opportunity in await uow.repos.volunteering.since(now - EXPORT_SINCE):
        starts = opportunity.starts_at.astimezone(zone)
        ends = opportunity.ends_at.astimezone(zone)
        item: dict[str, Any] = {
            "code": opportunity.code,
            "titles": opportunity.titles,
            "descriptions": opportunity.descriptions,
            "skills": list(opportunity.skills),
        }
        if opportunity.area:
            item["area"] = opportunity.area
        item |= {
            "place": opportunity.place,
            "starts": starts.strftime(MOMENT),
            "ends": ends.strftime("%H:%M" if ends.date() == starts.date() else MOMENT),
            "slots": opportunity.slots,
            "status": opportunity.status,
        }
        items.append(item)
    header = (
        f"# Volunteer shifts; times in {zone.key}. Edit and send back to import.\n"
        "# A moved or cancelled shift tells its volunteers at once.\n"
    )
    body = yaml.safe_dump({"opportunities": items}, allow_unicode=True, sort_keys=False, width=100)
    return header + body
