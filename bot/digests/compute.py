"""Managers' digests: the figures of a period beside the previous one, and their text.

:func:`build_digest` reads everything through :class:`DigestRepository` (the
aggregation happens in SQL) and pairs each figure with the same figure one period
earlier. :func:`format_digest` is pure: it turns a :class:`Digest` into one
Telegram HTML message in the manager's language, with every value escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import format_date, format_interval
from babel.numbers import format_decimal, format_percent

from bot.i18n import Translator
from storage.db import UnitOfWork
from storage.repositories.digests import (
    BACKLOG_BUCKETS,
    DRIVERS,
    MIN_CELL,
    Breakdown,
    DigestRepository,
    Period,
    ReportFigures,
    SatisfactionFigures,
    SeriesPoint,
    ServiceInfo,
    VolunteeringFigures,
)

# Telegram's limit on a message's text, counted in UTF-16 code units.
MAX_MESSAGE_LENGTH = 4096
MAX_LISTED = 5
MAX_COMMENT_LENGTH = 280
CHART_PERIODS = 8


@dataclass(frozen=True, slots=True)
class Change:
    """A figure in the period and in the previous one (``None`` where undefined)."""

    current: float | None
    previous: float | None

    @property
    def delta(self) -> float | None:
        """Current minus previous, or ``None`` when either is undefined."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportChanges:
    """Report figures against the previous period."""

    new: Change
    fixed: Change
    reopened: Change
    fixed_rate: Change
    reopened_rate: Change
    median_days_to_fix: Change
    backlog: Change
    overdue: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class SatisfactionChanges:
    """Satisfaction figures against the previous period."""

    ratings: Change
    csat: Change
    mean_overall: Change
    timeliness: Change
    knowledge: Change
    courtesy: Change
    fairness: Change
    outcome: Change
    effort: Change
    nps: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class VolunteeringChanges:
    """Volunteering figures against the previous period."""

    signups: Change
    attendance_rate: Change
    fill_rate: Change


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceDigest:
    """The figures of one service, or of all the digest's services (``service=None``)."""

    service: ServiceInfo | None
    reports: ReportFigures
    previous_reports: ReportFigures
    report_changes: ReportChanges
    satisfaction: SatisfactionFigures
    previous_satisfaction: SatisfactionFigures
    satisfaction_changes: SatisfactionChanges
    comments: tuple[str, ...]
    respondents: tuple[Breakdown, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """Everything a manager's digest says about ``[start, end)``."""

    start: datetime
    end: datetime
    previous_start: datetime
    previous_end: datetime
    total: ServiceDigest
    services: tuple[ServiceDigest, ...]
    volunteering: VolunteeringFigures
    previous_volunteering: VolunteeringFigures
    volunteering_changes: VolunteeringChanges
    category_names: dict[str, dict[str, str]]
    area_names: dict[str, dict[str, str]] = field(default_factory=dict)
    min_cell: int = MIN_CELL


def previous_period(start: datetime, end: datetime) -> Period:
    """The period of the same length just before ``[start, end)``."""
    return start - (end - start), start


def trailing_periods(start: datetime, end: datetime, count: int = CHART_PERIODS) -> list[Period]:
    """``count`` consecutive periods as long as ``[start, end)``, ending with it, oldest first."""
    length = end - start
    return [(start - length * back, end - length * back) for back in range(count - 1, -1, -1)]


def _report_changes(now: ReportFigures, before: ReportFigures) -> ReportChanges:
    return ReportChanges(
        new=Change(now.new, before.new),
        fixed=Change(now.fixed, before.fixed),
        reopened=Change(now.reopened, before.reopened),
        fixed_rate=Change(now.fixed_rate, before.fixed_rate),
        reopened_rate=Change(now.reopened_rate, before.reopened_rate),
        median_days_to_fix=Change(now.median_days_to_fix, before.median_days_to_fix),
        backlog=Change(now.backlog.total, before.backlog.total),
        overdue=Change(now.overdue, before.overdue),
    )


def _satisfaction_changes(
    now: SatisfactionFigures, before: SatisfactionFigures
) -> SatisfactionChanges:
    return SatisfactionChanges(
        ratings=Change(now.ratings, before.ratings),
        csat=Change(now.csat, before.csat),
        mean_overall=Change(now.mean_overall, before.mean_overall),
        timeliness=Change(now.drivers.timeliness, before.drivers.timeliness),
        knowledge=Change(now.drivers.knowledge, before.drivers.knowledge),
        courtesy=Change(now.drivers.courtesy, before.drivers.courtesy),
        fairness=Change(now.drivers.fairness, before.drivers.fairness),
        outcome=Change(now.drivers.outcome, before.drivers.outcome),
        effort=Change(now.effort, before.effort),
        nps=Change(now.nps, before.nps),
    )


async def build_digest(
    uow: UnitOfWork,
    *,
    service_ids: Sequence[int] | None,
    start: datetime,
    end: datetime,
) -> Digest:
    """The digest of ``[start, end)`` for these services (``None``: every active one).

    Each figure comes with its value over the previous period of the same length.
    Services without activity are listed with empty figures.
    """
    repository = DigestRepository(uow.session)
    previous_start, previous_end = previous_period(start, end)
    services = await repository.services(service_ids)
    # An explicit list lets the (service_id, created_at) indexes do the work.
    ids = [service.id for service in services]
    # Both periods in one go: each table is read once for the two of them.
    periods = [(start, end), (previous_start, previous_end)]
    reports, previous_reports = await repository.report_figures_for(ids, periods)
    satisfaction, previous_satisfaction = await repository.satisfaction_for(ids, periods)
    comments = await repository.recent_comments(ids, start, end)
    respondents = await repository.respondents(
        ids, start, end, dimensions=("language", "area"), min_cell=MIN_CELL
    )
    volunteering = await repository.volunteering(start, end)
    previous_volunteering = await repository.volunteering(previous_start, previous_end)

    def section(service: ServiceInfo | None) -> ServiceDigest:
        key = None if service is None else service.id
        now, before = reports.get(key), previous_reports.get(key)
        rated, rated_before = satisfaction.get(key), previous_satisfaction.get(key)
        return ServiceDigest(
            service=service,
            reports=now,
            previous_reports=before,
            report_changes=_report_changes(now, before),
            satisfaction=rated,
            previous_satisfaction=rated_before,
            satisfaction_changes=_satisfaction_changes(rated, rated_before),
            comments=comments.get(key),
            respondents=respondents.get(key),
        )

    return Digest(
        start=start,
        end=end,
        previous_start=previous_start,
        previous_end=previous_end,
        total=section(None),
        services=tuple(section(service) for service in services),
        volunteering=volunteering,
        previous_volunteering=previous_volunteering,
        volunteering_changes=VolunteeringChanges(
            signups=Change(volunteering.signups, previous_volunteering.signups),
            attendance_rate=Change(
                volunteering.attendance_rate, previous_volunteering.attendance_rate
            ),
            fill_rate=Change(volunteering.fill_rate, previous_volunteering.fill_rate),
        ),
        category_names=await repository.category_names(),
        area_names=await repository.area_names(),
    )


async def build_series(
    uow: UnitOfWork, *, service_ids: Sequence[int] | None, periods: Sequence[Period]
) -> tuple[SeriesPoint, ...]:
    """The chart's figures for each period (see :func:`trailing_periods`), oldest first."""
    repository = DigestRepository(uow.session)
    ids = [service.id for service in await repository.services(service_ids)]
    return await repository.series(ids, periods)


# --- formatting ------------------------------------------------------------------------


def telegram_length(text: str) -> int:
    """The length Telegram counts (UTF-16 code units), taken on the HTML source.

    Tags and entities make the source longer than the parsed text, so a source
    within the limit is a message within the limit.
    """
    return len(text.encode("utf-16-le")) // 2


class _Formatter:
    """Numbers, dates and changes in one language."""

    def __init__(self, language: str, translator: Translator) -> None:
        self.language = language
        self.translator = translator

    def text(self, key: str, /, **values: object) -> str:
        return self.translator.text(self.language, key, **values)

    def count(self, value: float | None) -> str:
        return "–" if value is None else format_decimal(value, format="#,##0", locale=self.language)

    def decimal(self, value: float | None) -> str:
        if value is None:
            return "–"
        return format_decimal(value, format="#,##0.0", locale=self.language)

    def percent(self, value: float | None) -> str:
        if value is None:
            return "–"
        # The locale's own pattern: "64%" in English, "64 %" in French.
        return format_percent(value, locale=self.language)

    def signed(self, value: float | None) -> str:
        if value is None:
            return "–"
        if round(value) == 0:
            return self.count(0)
        return format_decimal(value, format="+#,##0;-#,##0", locale=self.language)

    def change(
        self, change: Change, render: Callable[[float], str], *, threshold: float = 0.05
    ) -> str:
        """`` (▲ 2)`` after a figure, or nothing when there is nothing to compare with."""
        delta = change.delta
        if delta is None:
            return ""
        if abs(delta) < threshold:
            return " (=)"
        arrow = "▲" if delta > 0 else "▼"
        return f" ({arrow} {render(abs(delta))})"

    def count_change(self, change: Change) -> str:
        return self.change(change, self.count, threshold=0.5)

    def decimal_change(self, change: Change) -> str:
        return self.change(change, self.decimal)

    def points_change(self, change: Change) -> str:
        """A change of a share, in percentage points."""
        return self.change(
            change,
            lambda delta: self.text("digest.points", value=self.count(delta * 100)),
            threshold=0.005,
        )

    def name(self, names: dict[str, str], fallback: str) -> str:
        return names.get(self.language) or names.get(self.translator.default_language) or fallback

    def status(self, code: str) -> str:
        key = f"digest.status.{code}"
        return self.text(key) if self.translator.has(key) else code

    def language_name(self, code: str) -> str:
        try:
            return Locale.parse(code).get_display_name(self.language) or code
        except (ValueError, UnknownLocaleError):
            return code

    def period(self, start: datetime, end: datetime) -> str:
        last_day = (end - timedelta(microseconds=1)).date()
        if last_day <= start.date():
            return format_date(start.date(), format="long", locale=self.language)
        return format_interval(start.date(), last_day, skeleton="yMMMd", locale=self.language)


def _listing(items: Sequence[str], f: _Formatter) -> str:
    shown = list(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown.append(f.text("digest.and_more", count=f.count(len(items) - MAX_LISTED)))
    return " · ".join(shown)


def _report_lines(section: ServiceDigest, digest: Digest, f: _Formatter) -> list[str]:
    figures, changes = section.reports, section.report_changes
    backlog = figures.backlog
    lines = [
        f.text(
            "digest.reports.new",
            count=f.count(figures.new),
            change=f.count_change(changes.new),
        ),
        f.text(
            "digest.reports.fixed",
            count=f.count(figures.fixed),
            change=f.count_change(changes.fixed),
            rate=f.percent(figures.fixed_rate),
        ),
        f.text(
            "digest.reports.reopened",
            count=f.count(figures.reopened),
            rate=f.percent(figures.reopened_rate),
        ),
        f.text(
            "digest.reports.median_fix",
            days=f.decimal(figures.median_days_to_fix),
            change=f.decimal_change(changes.median_days_to_fix),
        ),
        f.text(
            "digest.reports.backlog",
            count=f.count(backlog.total),
            change=f.count_change(changes.backlog),
            **{name: f.count(getattr(backlog, name)) for name, _, _ in BACKLOG_BUCKETS},
        ),
        f.text(
            "digest.reports.overdue",
            count=f.count(figures.overdue),
            change=f.count_change(changes.overdue),
        ),
    ]
    if figures.by_category:
        items = [
            f"{f.name(digest.category_names.get(code, {}), code)} {f.count(n)}"
            for code, n in figures.by_category.items()
        ]
        lines.append(f.text("digest.reports.by_category", items=_listing(items, f)))
    if figures.by_area:
        items = [
            f"{f.name(digest.area_names.get(code, {}), code)} {f.count(n)}"
            for code, n in figures.by_area.items()
        ]
        lines.append(f.text("digest.reports.by_area", items=_listing(items, f)))
    if figures.by_status:
        items = [f"{f.status(code)} {f.count(n)}" for code, n in figures.by_status.items()]
        lines.append(f.text("digest.reports.by_status", items=_listing(items, f)))
    return lines


def _satisfaction_lines(section: ServiceDigest, f: _Formatter) -> list[str]:
    figures, changes = section.satisfaction, section.satisfaction_changes
    if not figures.ratings:
        return [f.text("digest.satisfaction.none")]
    drivers = {name: f.decimal(getattr(figures.drivers, name)) for name in DRIVERS}
    return [
        f.text(
            "digest.satisfaction.summary",
            count=f.count(figures.ratings),
            csat=f.percent(figures.csat),
            csat_change=f.points_change(changes.csat),
            mean=f.decimal(figures.mean_overall),
            mean_change=f.decimal_change(changes.mean_overall),
        ),
        f.text(
            "digest.satisfaction.nps", nps=f.signed(figures.nps), change=f.count_change(changes.nps)
        ),
        f.text("digest.satisfaction.drivers", **drivers),
        f.text(
            "digest.satisfaction.effort",
            effort=f.decimal(figures.effort),
            change=f.decimal_change(changes.effort),
        ),
    ]


def _cell_name(digest: Digest, f: _Formatter, by_area: bool, code: str) -> str:
    if by_area:
        return f.name(digest.area_names.get(code, {}), code)
    return f.language_name(code)


def _respondent_lines(section: ServiceDigest, digest: Digest, f: _Formatter) -> list[str]:
    lines = []
    for breakdown in section.respondents:
        by_area = breakdown.dimension == "area"
        # By area, only ratings of reports pinned inside an area are placed.
        cells = [cell for cell in breakdown.cells if cell.value or not by_area]
        if not cells:
            continue
        value = partial(_cell_name, digest, f, by_area)
        items = [
            f.text(
                "digest.respondents.hidden",
                value=value(cell.value),
                min=f.count(digest.min_cell),
            )
            if cell.hidden
            else f.text(
                "digest.respondents.cell",
                value=value(cell.value),
                people=f.count(cell.people),
            )
            for cell in cells
        ]
        dimension_key = f"digest.dimension.{breakdown.dimension}"
        dimension = (
            f.text(dimension_key) if f.translator.has(dimension_key) else breakdown.dimension
        )
        lines.append(f.text("digest.respondents", dimension=dimension, items=_listing(items, f)))
    return lines


def _comment_lines(section: ServiceDigest, f: _Formatter) -> list[str]:
    lines = []
    for comment in section.comments:
        text = " ".join(comment.split())
        if len(text) > MAX_COMMENT_LENGTH:
            text = text[: MAX_COMMENT_LENGTH - 1].rstrip() + "…"
        lines.append(f.text("digest.comment", text=text))
    return lines


def _quiet(section: ServiceDigest) -> bool:
    """Nothing happened and nothing waits: one line says so instead of a page of zeros."""
    reports = section.reports
    return not (
        reports.new
        or reports.fixed
        or reports.reopened
        or reports.backlog.total
        or section.satisfaction.ratings
        or section.previous_reports.new
        or section.previous_satisfaction.ratings
    )


def _section(section: ServiceDigest, digest: Digest, f: _Formatter) -> str:
    title = (
        f.text("digest.all_services")
        if section.service is None
        else f.name(section.service.names, section.service.code)
    )
    lines = [f.text("digest.section", name=title)]
    if _quiet(section):
        lines.append(f.text("digest.quiet"))
        return "\n".join(lines)
    lines += _report_lines(section, digest, f)
    lines += _satisfaction_lines(section, f)
    lines += _respondent_lines(section, digest, f)
    lines += _comment_lines(section, f)
    return "\n".join(lines)


def _volunteering_section(digest: Digest, f: _Formatter) -> str:
    figures, changes = digest.volunteering, digest.volunteering_changes
    return "\n".join(
        [
            f.text("digest.volunteering"),
            f.text(
                "digest.volunteering.signups",
                count=f.count(figures.signups),
                change=f.count_change(changes.signups),
                volunteers=f.count(figures.volunteers),
            ),
            f.text(
                "digest.volunteering.attendance",
                rate=f.percent(figures.attendance_rate),
                change=f.points_change(changes.attendance_rate),
                attended=f.count(figures.attended),
                recorded=f.count(figures.attendance_recorded),
            ),
            f.text(
                "digest.volunteering.fill",
                rate=f.percent(figures.fill_rate),
                change=f.points_change(changes.fill_rate),
                confirmed=f.count(figures.confirmed),
                slots=f.count(figures.slots),
                shifts=f.count(figures.shifts),
            ),
        ]
    )


def format_digest(digest: Digest, language: str, translator: Translator) -> str:
    """The digest as one Telegram HTML message (at most 4096 characters).

    The total comes first, then volunteering, then each service. When everything
    does not fit, the last services are left out and a line says how many.
    """
    f = _Formatter(translator.resolve_language(language), translator)
    head = "\n".join(
        [
            f.text("digest.title", period=f.period(digest.start, digest.end)),
            f.text(
                "digest.compared",
                period=f.period(digest.previous_start, digest.previous_end),
            ),
        ]
    )
    # One service: its section is the total, so it is not repeated.
    blocks = [head]
    if len(digest.services) == 1:
        blocks.append(_section(digest.services[0], digest, f))
        services: tuple[ServiceDigest, ...] = ()
    else:
        blocks.append(_section(digest.total, digest, f))
        services = digest.services
    blocks.append(_volunteering_section(digest, f))
    sections = [_section(section, digest, f) for section in services]
    for shown in range(len(sections), -1, -1):
        left_out = len(sections) - shown
        parts = blocks + sections[:shown]
        if left_out:
            parts.append(f.text("digest.more_services", count=f.count(left_out)))
        message = "\n\n".join(parts)
        if telegram_length(message) <= MAX_MESSAGE_LENGTH:
            return message
    # Only reachable with absurdly long names. Every line of the templates closes
    # its own tags, so cutting whole lines keeps the HTML valid.
    while telegram_length(message) > MAX_MESSAGE_LENGTH and "\n" in message:
        message = message.rsplit("\n", 1)[0]
    return message[: MAX_MESSAGE_LENGTH // 2]
