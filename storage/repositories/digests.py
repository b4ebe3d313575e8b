"""Digest figures for service managers: reports, satisfaction, volunteering, exports.

Every figure is aggregated by the database. A query first groups the period's rows
per service; the total over the services asked for is then rolled up in SQL from
those partial aggregates (sums of counts and sums, so it is exact) in the same
statement, with ``UNION ALL``. Only figures that cannot be rolled up that way are
computed from the rows twice: medians (``percentile_cont`` with ``GROUPING SETS`` on
PostgreSQL, a ``row_number()`` window on SQLite) and counts of distinct people.

Periods are half-open, ``[start, end)``, in UTC; the ``*_for`` methods take several
(non-overlapping) periods at once. ``service_ids=None`` means every service; callers
that know the list should pass it, because the ``(service_id, created_at)`` indexes
serve an ``IN`` list with one range scan per service where no list means a scan of
the whole table.

"Open at a moment" is judged by timestamps (made before it, neither fixed nor
closed before it), so past periods are described as they were; ``fixed`` uses a
report's latest ``fixed_at``. This relies on ``ReportRepository.set_status``
clearing ``fixed_at`` and ``closed_at`` when a report goes back to an open status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any, Final, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    distinct,
    extract,
    func,
    literal,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal, _TraverseInternalsType

from storage.models import (
    Area,
    Category,
    Opportunity,
    Rating,
    Report,
    ReportEvent,
    Service,
    Signup,
)
from storage.repositories._dialect import dialect_name
from storage.repositories.reports import OPEN_STATUSES, format_reference

T = TypeVar("T")
Period = tuple[datetime, datetime]
# Any SELECT, whatever its columns (SQLAlchemy 2.1 types them as a variadic tuple).
AnySelect = Select[*tuple[Any, ...]]

# Small cells are hidden below this many distinct people (DESIGN.md, "Trust").
MIN_CELL: Final = 5
# CSAT counts the top two boxes of the five-point overall score.
SATISFIED_FROM: Final = 4
NPS_PROMOTERS_FROM: Final = 9
NPS_DETRACTORS_UP_TO: Final = 6
REOPENED: Final = "reopened"
STATUS_CHANGED: Final = "status_changed"
DRIVERS: Final = ("timeliness", "knowledge", "courtesy", "fairness", "outcome")
# Backlog age buckets in whole days at the period end: (Backlog field, first, last day).
BACKLOG_BUCKETS: Final = (
    ("days_0_7", 0, 7),
    ("days_8_30", 8, 30),
    ("days_31_90", 31, 90),
    ("days_over_90", 91, None),
)
SECONDS_PER_DAY: Final = 86_400


# --- plain data ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PerService(Generic[T]):
    """Figures for each service asked for (keyed by id) and over all of them together."""

    total: T
    services: dict[int, T] = field(default_factory=dict)

    def get(self, service_id: int | None) -> T:
        """The figures of one service, or the total for ``None``."""
        return self.total if service_id is None else self.services[service_id]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceInfo:
    """A service as the digest names it."""

    id: int
    code: str
    names: dict[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backlog:
    """Reports still open at the period end, by age in whole days at that moment."""

    days_0_7: int = 0
    days_8_30: int = 0
    days_31_90: int = 0
    days_over_90: int = 0

    @property
    def total(self) -> int:
        """Every open report."""
        return self.days_0_7 + self.days_8_30 + self.days_31_90 + self.days_over_90


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFigures:
    """What happened to reports in a period.

    ``by_category`` and ``by_status`` count the reports made in the period, by
    category code and by their status now. ``fixed`` counts reports fixed in the
    period whenever they were made; ``reopened`` counts reports reopened in the
    period. ``backlog`` and ``overdue`` describe reports open at the period end.
    """

    new: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    by_area: dict[str, int] = field(default_factory=dict)
    fixed: int = 0
    reopened: int = 0
    median_days_to_fix: float | None = None
    backlog: Backlog = field(default_factory=Backlog)
    overdue: int = 0

    @property
    def fixed_rate(self) -> float | None:
        """Reports fixed in the period over reports made in it (may exceed 1)."""
        return self.fixed / self.new if self.new else None

    @property
    def reopened_rate(self) -> float | None:
        """Reports reopened in the period over reports fixed in it."""
        return self.reopened / self.fixed if self.fixed else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Drivers:
    """Mean scores of the Common Measurements Tool's drivers of satisfaction."""

    timeliness: float | None = None
    knowledge: float | None = None
    courtesy: float | None = None
    fairness: float | None = None
    outcome: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SatisfactionFigures:
    """Satisfaction in a period: ``csat`` is a share (0-1), ``nps`` is -100..100."""

    ratings: int = 0
    csat: float | None = None
    mean_overall: float | None = None
    drivers: Drivers = field(default_factory=Drivers)
    effort: float | None = None
    nps: float | None = None
    nps_answers: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RespondentCell:
    """One value of a breakdown (e.g. the language ``fr``).

    Below the minimum number of distinct people the figures are ``None`` and
    ``hidden`` is true: the small count never leaves the database.
    """

    value: str
    people: int | None
    ratings: int | None
    csat: float | None
    hidden: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Breakdown:
    """Who responds, along one dimension (``"language"``), largest cells first."""

    dimension: str
    cells: tuple[RespondentCell, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VolunteeringFigures:
    """Volunteering in a period (not tied to services).

    ``signups`` and ``volunteers`` count sign-ups made in the period and the
    distinct people who made them. The rest describes shifts starting in the period
    (cancelled shifts left out): their places, confirmed sign-ups, and attendance
    where the organiser recorded it.
    """

    signups: int = 0
    volunteers: int = 0
    shifts: int = 0
    slots: int = 0
    confirmed: int = 0
    attendance_recorded: int = 0
    attended: int = 0

    @property
    def attendance_rate(self) -> float | None:
        """Attended over confirmed sign-ups whose attendance was recorded."""
        return self.attended / self.attendance_recorded if self.attendance_recorded else None

    @property
    def fill_rate(self) -> float | None:
        """Confirmed places over places offered (may exceed 1 if slots were lowered)."""
        return self.confirmed / self.slots if self.slots else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesPoint:
    """One period of the chart: reports received and fixed, and CSAT (0-1)."""

    start: datetime
    end: datetime
    received: int
    fixed: int
    ratings: int
    csat: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportExportRow:
    """A report as exported to managers: never the citizen's identity."""

    reference: str
    created_at: datetime
    category: str
    service: str
    status: str
    latitude: float | None
    longitude: float | None
    address: str | None
    supporters: int
    due_at: datetime
    fixed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RatingExportRow:
    """A rating as exported to managers: never the citizen's identity."""

    created_at: datetime
    service: str
    overall: int
    timeliness: int | None
    knowledge: int | None
    courtesy: int | None
    fairness: int | None
    outcome: int | None
    effort: int | None
    nps: int | None
    comment: str | None
    language: str


# --- breakdown dimensions --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dimension:
    """How to read one breakdown dimension for a rating.

    ``join`` adds what the value needs to the rating query.
    """

    value: Callable[[], ColumnElement[Any]]
    join: Callable[[AnySelect], AnySelect] | None = None


RESPONDENT_DIMENSIONS: Final[dict[str, _Dimension]] = {
    "language": _Dimension(value=lambda: Rating.language.expression),
    # The area of the rated report; ratings of no pinned report count as "".
    "area": _Dimension(
        value=lambda: func.coalesce(Area.code, literal("")),
        join=lambda statement: statement.outerjoin(Report, Report.id == Rating.report_id).outerjoin(
            Area, Area.id == Report.area_id
        ),
    ),
}


# --- SQL building blocks -------------------------------------------------------------------


class _Unindexed(ColumnElement[T]):
    """A column the SQLite planner must not reach through an index.

    Queries that read most of the reports table (the backlog, the fixes of a
    period) are far faster as one sequential scan than as an index walk with a
    random table lookup per row, which SQLite picks when the column is indexed
    (it even walks an index only to avoid sorting for ``GROUP BY``). SQLite's
    documented idiom is a unary ``+`` before the column; other databases get the
    plain column (PostgreSQL's planner makes this choice from its statistics).
    """

    inherit_cache = True
    # SQLAlchemy's cache key reads this; its base declares it as an instance field.
    _traverse_internals: _TraverseInternalsType = [  # noqa: RUF012
        ("column", InternalTraversal.dp_clauseelement)
    ]

    def __init__(self, column: ColumnElement[T]) -> None:
        self.column = column
        self.type = column.type

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects


@compiles(_Unindexed)
def _compile_unindexed(element: _Unindexed[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Unindexed, "sqlite")
def _compile_unindexed_sqlite(element: _Unindexed[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + compiler.process(element.column, **kw)


def _unindexed(column: Any) -> ColumnElement[Any]:
    return _Unindexed(column.expression if hasattr(column, "expression") else column)


def _check_period(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("digest periods need aware datetimes")
    if end <= start:
        raise ValueError("a period must end after it starts")


def _in_services(column: Any, service_ids: Sequence[int] | None) -> ColumnElement[bool]:
    return true() if service_ids is None else column.in_(list(service_ids))


def _in_period(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _no_service() -> ColumnElement[int]:
    """The service column of a total row (typed, so PostgreSQL unions agree)."""
    return cast(null(), Integer)


def _open_at(moment: datetime) -> ColumnElement[bool]:
    """Reports open at ``moment``, judged by their timestamps.

    A report neither fixed nor closed before ``moment`` was open then. A report now
    in a closed status without any such timestamp is taken as closed all along,
    since when it closed is unknown.
    """
    return and_(
        Report.created_at < moment,
        or_(Report.fixed_at.is_(None), Report.fixed_at >= moment),
        or_(Report.closed_at.is_(None), Report.closed_at >= moment),
        or_(
            Report.status.in_(OPEN_STATUSES),
            Report.fixed_at.is_not(None),
            Report.closed_at.is_not(None),
        ),
    )


def _with_total(grouped: AnySelect, summed: Sequence[str]) -> CompoundSelect[*tuple[Any, ...]]:
    """Rows of ``grouped`` (one per period and service) and a total row per period.

    ``grouped`` must have ``period`` and ``service_id`` columns; the total rows sum
    ``summed`` in SQL and have ``NULL`` for the service. The database evaluates the
    grouping once: the CTE is referenced twice, so SQLite and PostgreSQL materialise it.
    """
    per_service = grouped.cte("per_service")
    return union_all(
        select(
            per_service.c.period,
            per_service.c.service_id,
            *(per_service.c[name] for name in summed),
        ),
        select(
            per_service.c.period,
            _no_service().label("service_id"),
            *(func.coalesce(func.sum(per_service.c[name]), 0).label(name) for name in summed),
        ).group_by(per_service.c.period),
    )


def _reopening() -> ColumnElement[bool]:
    """An event that reopened its report.

    Either an explicit ``reopened`` event, or a status change from a status that is
    not open (fixed, closed, duplicate...) back to an open one, which is how
    :meth:`ReportRepository.set_status` records a reopening.
    """
    return or_(
        ReportEvent.kind == REOPENED,
        and_(
            ReportEvent.kind == STATUS_CHANGED,
            ReportEvent.from_status.not_in(OPEN_STATUSES),
            ReportEvent.to_status.in_(OPEN_STATUSES),
        ),
    )


def _ratio(numerator: Any, denominator: Any) -> ColumnElement[Any]:
    return cast(numerator, Float) / func.nullif(denominator, 0)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int:
    return 0 if value is None else int(value)


def _satisfied() -> ColumnElement[int]:
    return case((Rating.overall >= SATISFIED_FROM, 1), else_=0)


# Every satisfaction measure is the mean of an expression over the ratings where it
# is not NULL, so per-service sums and counts roll up exactly into the total.
def _measures() -> dict[str, ColumnElement[Any]]:
    nps_points = case(
        (Rating.nps >= NPS_PROMOTERS_FROM, 100),
        (Rating.nps <= NPS_DETRACTORS_UP_TO, -100),
        (Rating.nps.is_not(None), 0),
        else_=None,
    )
    return {
        "csat": _satisfied(),
        "overall": Rating.overall,
        **{name: getattr(Rating, name) for name in DRIVERS},
        "effort": Rating.effort,
        "nps": nps_points,
    }


def _check_periods(periods: Sequence[Period]) -> list[Period]:
    """The periods as given, once each is valid and no two overlap."""
    checked = list(periods)
    for start, end in checked:
        _check_period(start, end)
    for (_, previous_end), (start, _) in pairwise(sorted(checked)):
        if start < previous_end:
            raise ValueError("periods must not overlap")
    return checked


def _period_index(column: Any, periods: Sequence[Period]) -> ColumnElement[int]:
    """Which of ``periods`` (by position) ``column`` falls in; NULL for none."""
    return case(
        *((_in_period(column, start, end), index) for index, (start, end) in enumerate(periods)),
        else_=None,
    )


def _in_any_period(column: Any, periods: Sequence[Period]) -> ColumnElement[bool]:
    """``column`` within the span of ``periods`` (one range an index can serve)."""
    return _in_period(column, min(start for start, _ in periods), max(end for _, end in periods))


# --- the repository ------------------------------------------------------------------


class DigestRepository:
    """Read-only aggregates behind managers' digests, charts and exports."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def _postgresql(self) -> bool:
        return dialect_name(self._session) == "postgresql"

    # Services and categories

    async def services(self, service_ids: Sequence[int] | None = None) -> list[ServiceInfo]:
        """The services asked for (all active ones for ``None``) in display order."""
        condition = (
            Service.active.is_(True) if service_ids is None else Service.id.in_(list(service_ids))
        )
        result = await self._session.execute(
            select(Service.id, Service.code, Service.names)
            .where(condition)
            .order_by(Service.position, Service.id)
        )
        return [
            ServiceInfo(id=row.id, code=row.code, names=_texts(row.names)) for row in result.all()
        ]

    async def area_names(self) -> dict[str, dict[str, str]]:
        """Every area's names by language, keyed by code (for display)."""
        result = await self._session.execute(select(Area.code, Area.names))
        return {row.code: _texts(row.names) for row in result.all()}

    async def category_names(self) -> dict[str, dict[str, str]]:
        """Every category's names by language, keyed by code (for display)."""
        result = await self._session.execute(select(Category.code, Category.names))
        return {row.code: _texts(row.names) for row in result.all()}

    # Reports

    async def report_figures(
        self, service_ids: Sequence[int] | None, start: datetime, end: datetime
    ) -> PerService[ReportFigures]:
        """New, fixed and reopened reports, the time to fix, the backlog and overdue."""
        (figures,) = await self.report_figures_for(service_ids, [(start, end)])
        return figures

    async def report_figures_for(
        self, service_ids: Sequence[int] | None, periods: Sequence[Period]
    ) -> list[PerService[ReportFigures]]:
        """:meth:`report_figures` of several periods (which must not overlap), in order.

        New reports, fixes and the backlog are each read in one statement for all
        the periods (a digest asks for its period and the previous one): on a large
        table the scans, not the arithmetic, are the cost. Reopenings are looked up
        per period, from the few events that match.
        """
        periods = _check_periods(periods)
        new = await self._new_reports(service_ids, periods)
        fixed = await self._fixed_reports(service_ids, periods)
        reopened = await self._reopened_reports(service_ids, periods)
        backlog = await self._backlog(service_ids, [end for _, end in periods])
        keys = _keys(service_ids, *new, *fixed, *reopened, *backlog)

        def figures(index: int, key: int | None) -> ReportFigures:
            counts = new[index].get(key, {})
            fixed_count, median = fixed[index].get(key, (0, None))
            buckets, overdue = backlog[index].get(key, (Backlog(), 0))
            return ReportFigures(
                new=counts.get(("new", ""), 0),
                by_category=_sorted_counts(counts, "category"),
                by_status=_sorted_counts(counts, "status"),
                # Reports without a pin, or outside every area, are not listed by area.
                by_area={k: n for k, n in _sorted_counts(counts, "area").items() if k},
                fixed=fixed_count,
                reopened=reopened[index].get(key, 0),
                median_days_to_fix=median,
                backlog=buckets,
                overdue=overdue,
            )

        return [
            PerService(total=figures(index, None), services={k: figures(index, k) for k in keys})
            for index in range(len(periods))
        ]

    async def _new_reports(
        self, service_ids: Sequence[int] | None, periods: Sequence[Period]
    ) -> list[dict[int | None, dict[tuple[str, str], int]]]:
        # One scan groups the periods' reports by (period, service, category,
        # status, area); the small grouped set is then rolled up eight ways in SQL.
        period = _period_index(Report.created_at, periods)
        area_code = func.coalesce(Area.code, literal(""))
        grouped = (
            select(
                period.label("period"),
                Report.service_id,
                Category.code.label("category"),
                Report.status,
                area_code.label("area"),
                func.count().label("n"),
            )
            .join(Category, Category.id == Report.category_id)
            .outerjoin(Area, Area.id == Report.area_id)
            .where(_in_services(Report.service_id, service_ids))
            .where(_in_any_period(Report.created_at, periods), period.is_not(None))
            .group_by(period, Report.service_id, Category.code, Report.status, area_code)
            .cte("new_reports")
        )
        total = func.sum(grouped.c.n).label("n")
        parts = []
        for kind, key in (
            ("new", None),
            ("category", grouped.c.category),
            ("status", grouped.c.status),
            ("area", grouped.c.area),
        ):
            key_column = (literal("") if key is None else key).label("key")
            kind_column = literal(kind).label("kind")
            by_key = [] if key is None else [key]
            parts += [
                select(
                    kind_column, grouped.c.period, grouped.c.service_id, key_column, total
                ).group_by(grouped.c.period, grouped.c.service_id, *by_key),
                select(
                    kind_column,
                    grouped.c.period,
                    _no_service().label("service_id"),
                    key_column,
                    total,
                ).group_by(grouped.c.period, *by_key),
            ]
        rows = (await self._session.execute(union_all(*parts))).all()
        found: list[dict[int | None, dict[tuple[str, str], int]]] = [{} for _ in periods]
        for row in rows:
            if row.n is not None:
                counts = found[row.period].setdefault(row.service_id, {})
                counts[(row.kind, row.key)] = int(row.n)
        return found

    async def _fixed_reports(
        self, service_ids: Sequence[int] | None, periods: Sequence[Period]
    ) -> list[dict[int | None, tuple[int, float | None]]]:
        """(count, median days from report to fix) of reports fixed in each period."""
        period = _period_index(Report.fixed_at, periods)
        # No index leads to fixed_at: scan the table once rather than walk the
        # service index with a lookup per report.
        conditions = and_(
            _in_services(_unindexed(Report.service_id), service_ids),
            _in_any_period(Report.fixed_at, periods),
            period.is_not(None),
        )
        if self._postgresql:
            days = extract("epoch", Report.fixed_at - Report.created_at) / SECONDS_PER_DAY
            statement: Any = (
                select(
                    period.label("period"),
                    Report.service_id,
                    func.grouping(Report.service_id).label("is_total"),
                    func.count().label("n"),
                    func.percentile_cont(0.5).within_group(days).label("median"),
                )
                .where(conditions)
                .group_by(func.grouping_sets(tuple_(period, Report.service_id), tuple_(period)))
            )
        else:
            statement = _sqlite_median_statement(period, conditions)
        rows = (await self._session.execute(statement)).all()
        found: list[dict[int | None, tuple[int, float | None]]] = [{} for _ in periods]
        for row in rows:
            if row.n:
                key = None if row.is_total else row.service_id
                found[row.period][key] = (int(row.n), _float(row.median))
        return found

    async def _reopened_reports(
        self, service_ids: Sequence[int] | None, periods: Sequence[Period]
    ) -> list[dict[int | None, int]]:
        found = []
        for start, end in periods:
            # IN, not a join: each report counts once however often it was reopened,
            # and the few reopenings drive the lookups, not every report of the
            # services (one statement per period keeps that plan on SQLite).
            reopened = select(ReportEvent.report_id).where(
                _reopening(), _in_period(ReportEvent.at, start, end)
            )
            grouped = (
                select(
                    literal(0).label("period"),
                    Report.service_id,
                    func.count().label("reopened"),
                )
                .where(Report.id.in_(reopened), _in_services(Report.service_id, service_ids))
                .group_by(Report.service_id)
            )
            # A report belongs to one service, so the per-service counts add up.
            rows = (await self._session.execute(_with_total(grouped, ["reopened"]))).all()
            found.append({row.service_id: int(row.reopened) for row in rows})
        return found

    async def _backlog(
        self, service_ids: Sequence[int] | None, moments: Sequence[datetime]
    ) -> list[dict[int | None, tuple[Backlog, int]]]:
        """Open reports by age, and how many are overdue, at each of ``moments``.

        One scan for all the moments. A cheap condition keeps the reports that can be
        open at any of them; each of those gets, per moment, its age bucket (NULL
        when not open then) and whether it was overdue, and the outer query counts.
        Age buckets are bounds on created_at: a report is at most N whole days old at
        ``moment`` exactly when it was made after ``moment - (N + 1) days``, a plain
        comparison on both backends.
        """
        earliest, latest = min(moments), max(moments)
        service = _unindexed(Report.service_id)
        per_moment: list[ColumnElement[Any]] = []
        for index, moment in enumerate(moments):
            ages = [
                (Report.created_at > moment - timedelta(days=last + 1), position)
                for position, (_, _, last) in enumerate(BACKLOG_BUCKETS)
                if last is not None
            ]
            age = case(*ages, else_=len(BACKLOG_BUCKETS) - 1)
            per_moment += [
                case((_open_at(moment), age), else_=None).label(f"bucket_{index}"),
                case((and_(_open_at(moment), Report.due_at < moment), 1), else_=0).label(
                    f"overdue_{index}"
                ),
            ]
        candidates = (
            select(service.label("service_id"), *per_moment)
            .where(
                _in_services(service, service_ids),
                # Nearly every report was made before the end: a scan beats the index.
                _unindexed(Report.created_at) < latest,
                or_(Report.fixed_at.is_(None), Report.fixed_at >= earliest),
                or_(Report.closed_at.is_(None), Report.closed_at >= earliest),
            )
            .subquery("candidates")
        )
        counts: dict[str, ColumnElement[int]] = {}
        for index in range(len(moments)):
            bucket = candidates.c[f"bucket_{index}"]
            for position, (name, _, _) in enumerate(BACKLOG_BUCKETS):
                counts[f"{name}_{index}"] = func.count().filter(bucket == position)
            counts[f"overdue_{index}"] = func.sum(candidates.c[f"overdue_{index}"])
        grouped = select(
            literal(0).label("period"),
            candidates.c.service_id,
            *(value.label(name) for name, value in counts.items()),
        ).group_by(candidates.c.service_id)
        rows = (await self._session.execute(_with_total(grouped, list(counts)))).all()
        return [
            {
                row.service_id: (
                    Backlog(
                        **{
                            name: int(getattr(row, f"{name}_{index}"))
                            for name, _, _ in BACKLOG_BUCKETS
                        }
                    ),
                    int(getattr(row, f"overdue_{index}")),
                )
                for row in rows
            }
            for index in range(len(moments))
        ]

    # Satisfaction

    async def satisfaction(
        self, service_ids: Sequence[int] | None, start: datetime, end: datetime
    ) -> PerService[SatisfactionFigures]:
        """CSAT, mean overall score, the five drivers, effort and NPS of the period."""
        _check_period(start, end)
        return await self._satisfaction(service_ids, start, end)

    async def satisfaction_for(
        self, service_ids: Sequence[int] | None, periods: Sequence[Period]
    ) -> list[PerService[SatisfactionFigures]]:
        """:meth:`satisfaction` of several periods, in their order.

        One statement per period: the periods' ratings are different rows, so one
        statement would read no fewer, and grouping by period as well as service
        costs SQLite a sort that the ``(service_id, created_at)`` index otherwise
        spares it.
        """
        return [
            await self._satisfaction(service_ids, start, end)
            for start, end in _check_periods(periods)
        ]

    async def _satisfaction(
        self, service_ids: Sequence[int] | None, start: datetime, end: datetime
    ) -> PerService[SatisfactionFigures]:
        measures = _measures()
        sums: list[ColumnElement[Any]] = [func.count().label("ratings")]
        for name, expression in measures.items():
            sums += [
                func.sum(expression).label(f"{name}_sum"),
                func.count(expression).label(f"{name}_n"),
            ]
        grouped = (
            select(literal(0).label("period"), Rating.service_id, *sums)
            .where(_in_services(Rating.service_id, service_ids))
            .where(_in_period(Rating.created_at, start, end))
            .group_by(Rating.service_id)
        )
        rolled = _with_total(grouped, [column.name for column in sums]).subquery("rolled")
        statement = select(
            rolled.c.service_id,
            rolled.c.ratings,
            rolled.c.nps_n,
            *(_ratio(rolled.c[f"{n}_sum"], rolled.c[f"{n}_n"]).label(n) for n in measures),
        )
        rows = (await self._session.execute(statement)).all()
        found = {
            row.service_id: SatisfactionFigures(
                ratings=_int(row.ratings),
                csat=_float(row.csat),
                mean_overall=_float(row.overall),
                drivers=Drivers(**{name: _float(getattr(row, name)) for name in DRIVERS}),
                effort=_float(row.effort),
                nps=_float(row.nps),
                nps_answers=_int(row.nps_n),
            )
            for row in rows
        }
        return _per_service(service_ids, found, SatisfactionFigures())

    async def recent_comments(
        self,
        service_ids: Sequence[int] | None,
        start: datetime,
        end: datetime,
        limit: int = 3,
    ) -> PerService[tuple[str, ...]]:
        """The newest comments of the period: their text only, newest first."""
        _check_period(start, end)
        comments = (
            select(Rating.service_id, Rating.comment, Rating.created_at, Rating.id)
            .where(_in_services(Rating.service_id, service_ids))
            .where(_in_period(Rating.created_at, start, end))
            .where(Rating.comment.is_not(None), func.trim(Rating.comment) != "")
            .cte("comments")
        )
        newest_first = (comments.c.created_at.desc(), comments.c.id.desc())
        per_service = select(
            comments.c.service_id,
            comments.c.comment,
            func.row_number()
            .over(partition_by=comments.c.service_id, order_by=newest_first)
            .label("rank"),
        ).subquery("per_service")
        overall = select(
            _no_service().label("service_id"),
            comments.c.comment,
            func.row_number().over(order_by=newest_first).label("rank"),
        ).subquery("overall")
        statement = union_all(
            select(per_service).where(per_service.c.rank <= limit),
            select(overall).where(overall.c.rank <= limit),
        )
        rows = (await self._session.execute(statement)).all()
        found: dict[int | None, list[tuple[int, str]]] = {}
        for row in rows:
            found.setdefault(row.service_id, []).append((int(row.rank), str(row.comment).strip()))
        texts = {key: tuple(text for _, text in sorted(items)) for key, items in found.items()}
        return _per_service(service_ids, texts, ())

    async def respondents(
        self,
        service_ids: Sequence[int] | None,
        start: datetime,
        end: datetime,
        *,
        dimensions: Iterable[str] = ("language",),
        min_cell: int = MIN_CELL,
    ) -> PerService[tuple[Breakdown, ...]]:
        """Who rated, by each dimension; cells under ``min_cell`` distinct people hidden.

        The hiding happens in SQL, so a small count is never even read.
        """
        _check_period(start, end)
        names = list(dimensions)
        found: dict[int | None, list[Breakdown]] = {}
        for name in names:
            cells = await self._breakdown(service_ids, start, end, name, min_cell)
            for key, values in cells.items():
                found.setdefault(key, []).append(Breakdown(dimension=name, cells=values))
        keys = set(found) | set(service_ids or ())
        complete = {
            key: tuple(
                next((b for b in found.get(key, []) if b.dimension == n), Breakdown(dimension=n))
                for n in names
            )
            for key in keys | {None}
        }
        return _per_service(service_ids, complete, ())

    async def _breakdown(
        self,
        service_ids: Sequence[int] | None,
        start: datetime,
        end: datetime,
        name: str,
        min_cell: int,
    ) -> dict[int | None, tuple[RespondentCell, ...]]:
        dimension = RESPONDENT_DIMENSIONS[name]
        value = dimension.value().label("value")

        def counted(*keys: Any) -> AnySelect:
            statement = select(
                *keys,
                func.count(distinct(Rating.citizen_id)).label("people"),
                func.count().label("ratings"),
                func.sum(_satisfied()).label("satisfied"),
            )
            if dimension.join is not None:
                statement = dimension.join(statement)
            return statement.where(_in_services(Rating.service_id, service_ids)).where(
                _in_period(Rating.created_at, start, end)
            )

        # Distinct people cannot be summed across services, so the total is counted
        # from the rows too: in the same scan with GROUPING SETS on PostgreSQL, in a
        # second one on SQLite (which has no grouping sets).
        if self._postgresql:
            cells = (
                counted(Rating.service_id, value)
                .group_by(func.grouping_sets(tuple_(Rating.service_id, value), tuple_(value)))
                .subquery("cells")
            )
        else:
            cells = union_all(
                counted(Rating.service_id, value).group_by(Rating.service_id, value),
                counted(_no_service().label("service_id"), value).group_by(value),
            ).subquery("cells")
        shown = cells.c.people >= min_cell
        statement = select(
            cells.c.service_id,
            cells.c.value,
            shown.label("shown"),
            case((shown, cells.c.people), else_=None).label("people"),
            case((shown, cells.c.ratings), else_=None).label("ratings"),
            case((shown, _ratio(cells.c.satisfied, cells.c.ratings)), else_=None).label("csat"),
        ).order_by(
            cells.c.service_id,
            # Shown cells by size; hidden ones by value only, as their order would
            # tell which small count is larger.
            shown.desc(),
            case((shown, cells.c.people), else_=None).desc(),
            cells.c.value,
        )
        rows = (await self._session.execute(statement)).all()
        found: dict[int | None, list[RespondentCell]] = {}
        for row in rows:
            found.setdefault(row.service_id, []).append(
                RespondentCell(
                    value=str(row.value),
                    people=None if row.people is None else int(row.people),
                    ratings=None if row.ratings is None else int(row.ratings),
                    csat=_float(row.csat),
                    hidden=not row.shown,
                )
            )
        return {key: tuple(cells_) for key, cells_ in found.items()}

    # Volunteering

    async def volunteering(self, start: datetime, end: datetime) -> VolunteeringFigures:
        """Sign-ups made in the period, and attendance and fill of its shifts."""
        _check_period(start, end)
        confirmed = Signup.status == "confirmed"
        per_shift = (
            select(
                Signup.opportunity_id,
                func.count().filter(confirmed).label("confirmed"),
                func.count().filter(confirmed, Signup.attended.is_not(None)).label("recorded"),
                func.count().filter(confirmed, Signup.attended.is_(True)).label("attended"),
            )
            .group_by(Signup.opportunity_id)
            .subquery("per_shift")
        )
        made = and_(_in_period(Signup.created_at, start, end))
        statement = (
            select(
                select(func.count()).where(made).scalar_subquery().label("signups"),
                select(func.count(distinct(Signup.citizen_id)))
                .where(made)
                .scalar_subquery()
                .label("volunteers"),
                func.count(Opportunity.id).label("shifts"),
                func.sum(Opportunity.slots).label("slots"),
                func.sum(per_shift.c.confirmed).label("confirmed"),
                func.sum(per_shift.c.recorded).label("recorded"),
                func.sum(per_shift.c.attended).label("attended"),
            )
            .select_from(Opportunity)
            .outerjoin(per_shift, per_shift.c.opportunity_id == Opportunity.id)
            .where(_in_period(Opportunity.starts_at, start, end), Opportunity.status != "cancelled")
        )
        row = (await self._session.execute(statement)).one()
        return VolunteeringFigures(
            signups=_int(row.signups),
            volunteers=_int(row.volunteers),
            shifts=_int(row.shifts),
            slots=_int(row.slots),
            confirmed=_int(row.confirmed),
            attendance_recorded=_int(row.recorded),
            attended=_int(row.attended),
        )

    # Chart

    async def series(
        self, service_ids: Sequence[int] | None, periods: Sequence[Period]
    ) -> tuple[SeriesPoint, ...]:
        """Reports received and fixed and CSAT for each period, oldest first.

        One statement: each table is read once over the whole span and its rows
        are bucketed into the periods with ``CASE``. Periods must not overlap.
        """
        ordered = sorted(_check_periods(periods))
        if not ordered:
            return ()
        first, last = ordered[0][0], ordered[-1][1]

        def counted(kind: str, column: Any, table_service: Any, extra: Any) -> AnySelect:
            bucket = _period_index(column, ordered).label("bucket")
            return (
                select(literal(kind).label("kind"), bucket, func.count().label("n"), extra)
                .where(_in_services(table_service, service_ids), _in_period(column, first, last))
                .group_by(bucket)
            )

        zero = literal(0).label("satisfied")
        statement = union_all(
            counted("received", Report.created_at, Report.service_id, zero),
            counted("fixed", Report.fixed_at, Report.service_id, zero),
            counted(
                "ratings",
                Rating.created_at,
                Rating.service_id,
                func.sum(_satisfied()).label("satisfied"),
            ),
        )
        rows = (await self._session.execute(statement)).all()
        found = {(row.kind, row.bucket): (int(row.n), _int(row.satisfied)) for row in rows}
        points = []
        for index, (start, end) in enumerate(ordered):
            ratings, satisfied = found.get(("ratings", index), (0, 0))
            points.append(
                SeriesPoint(
                    start=start,
                    end=end,
                    received=found.get(("received", index), (0, 0))[0],
                    fixed=found.get(("fixed", index), (0, 0))[0],
                    ratings=ratings,
                    csat=satisfied / ratings if ratings else None,
                )
            )
        return tuple(points)

    # Exports

    async def count_report_rows(
        self, service_ids: Sequence[int] | None, start: datetime, end: datetime
    ) -> int:
        """How many reports :meth:`report_rows` will give (for a progress bar)."""
        _check_period(start, end)
        statement = select(func.count()).where(
            _in_services(Report.service_id, service_ids), _in_period(Report.created_at, start, end)
        )
        return _int(await self._session.scalar(statement))

    async def report_rows(
        self,
        service_ids: Sequence[int] | None,
        start: datetime,
        end: datetime,
        *,
        chunk_size: int = 1000,
    ) -> AsyncIterator[list[ReportExportRow]]:
        """Reports made in the period, oldest first, in chunks from a server-side cursor."""
        _check_period(start, end)
        statement = (
            select(
                Report.id,
                Report.reference,
                Report.created_at,
                Category.code.label("category"),
                Service.code.label("service"),
                Report.status,
                Report.latitude,
                Report.longitude,
                Report.address,
                Report.supporters,
                Report.due_at,
                Report.fixed_at,
            )
            .join(Category, Category.id == Report.category_id)
            .join(Service, Service.id == Report.service_id)
            .where(_in_services(Report.service_id, service_ids))
            .where(_in_period(Report.created_at, start, end))
            .order_by(Report.created_at, Report.id)
        )
        async for rows in self._chunks(statement, chunk_size):
            yield [
                ReportExportRow(
                    reference=row.reference or format_reference(row.id),
                    created_at=row.created_at,
                    category=row.category,
                    service=row.service,
                    status=row.status,
                    latitude=row.latitude,
                    longitude=row.longitude,
                    address=row.address,
                    supporters=row.supporters,
                    due_at=row.due_at,
                    fixed_at=row.fixed_at,
                )
                for row in rows
            ]

    async def count_rating_rows(
        self, service_ids: Sequence[int] | None, start: datetime, end: datetime
    ) -> int:
        """How many ratings :meth:`rating_rows` will give (for a progress bar)."""
        _check_period(start, end)
        statement = select(func.count()).where(
            _in_services(Rating.service_id, service_ids), _in_period(Rating.created_at, start, end)
        )
        return _int(await self._session.scalar(statement))

    async def rating_rows(
        self,
        service_ids: Sequence[int] | None,
        start: datetime,
        end: datetime,
        *,
        chunk_size: int = 1000,
    ) -> AsyncIterator[list[RatingExportRow]]:
        """Ratings made in the period, oldest first, in chunks from a server-side cursor."""
        _check_period(start, end)
        statement = (
            select(
                Rating.created_at,
                Service.code.label("service"),
                Rating.overall,
                *(getattr(Rating, name) for name in DRIVERS),
                Rating.effort,
                Rating.nps,
                Rating.comment,
                Rating.language,
            )
            .join(Service, Service.id == Rating.service_id)
            .where(_in_services(Rating.service_id, service_ids))
            .where(_in_period(Rating.created_at, start, end))
            .order_by(Rating.created_at, Rating.id)
        )
        async for rows in self._chunks(statement, chunk_size):
            yield [
                RatingExportRow(
                    created_at=row.created_at,
                    service=row.service,
                    overall=row.overall,
                    timeliness=row.timeliness,
                    knowledge=row.knowledge,
                    courtesy=row.courtesy,
                    fairness=row.fairness,
                    outcome=row.outcome,
                    effort=row.effort,
                    nps=row.nps,
                    comment=row.comment,
                    language=row.language,
                )
                for row in rows
            ]

    async def _chunks(self, statement: AnySelect, chunk_size: int) -> AsyncIterator[list[Any]]:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        # stream() asks for a server-side cursor (asyncpg) or fetches in batches
        # (aiosqlite): memory stays at one chunk whatever the range.
        result = await self._session.stream(statement.execution_options(yield_per=chunk_size))
        try:
            async for partition in result.partitions(chunk_size):
                yield list(partition)
        finally:
            await result.close()


# --- helpers ---------------------------------------------------------------------------


def _rank_and_count(partition: Any, order: Any) -> list[ColumnElement[int]]:
    """Rank in the partition, and the partition's size, from one sort.

    The count spans the whole partition through its frame rather than through a
    window of its own, so SQLite sorts the rows once for both.
    """
    return [
        func.row_number().over(partition_by=partition, order_by=order).label("rn"),
        func.count().over(partition_by=partition, order_by=order, rows=(None, None)).label("n"),
    ]


def _sqlite_median_statement(
    period: ColumnElement[int], conditions: ColumnElement[bool]
) -> AnySelect:
    """Per period, per service and overall: (count, median days to fix) on SQLite.

    SQLite has no ``percentile_cont``: each row is ranked within its period and
    service, and within its period, and the median is the mean of the one or two
    middle ranks.
    """
    days = (func.julianday(Report.fixed_at) - func.julianday(Report.created_at)).label("days")
    fixed = select(period.label("period"), Report.service_id, days).where(conditions).cte("fixed")
    per_service = select(
        fixed.c.period,
        fixed.c.service_id,
        fixed.c.days,
        *_rank_and_count((fixed.c.period, fixed.c.service_id), fixed.c.days),
    )
    overall = select(
        fixed.c.period,
        _no_service().label("service_id"),
        fixed.c.days,
        *_rank_and_count((fixed.c.period,), fixed.c.days),
    )
    ranked = union_all(per_service, overall).subquery("ranked")
    # Floor division: the middle rank, or the two middle ranks of an even count.
    middle = ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2])
    return select(
        ranked.c.period,
        ranked.c.service_id,
        ranked.c.service_id.is_(None).label("is_total"),
        func.max(ranked.c.n).label("n"),
        func.avg(ranked.c.days).filter(middle).label("median"),
    ).group_by(ranked.c.period, ranked.c.service_id)


def _texts(document: Any) -> dict[str, str]:
    return {str(language): str(text) for language, text in (document or {}).items()}


def _sorted_counts(counts: dict[tuple[str, str], int], kind: str) -> dict[str, int]:
    """Counts of one kind, largest first (ties by key), as an ordered dict."""
    items = [(key, n) for (k, key), n in counts.items() if k == kind]
    return dict(sorted(items, key=lambda item: (-item[1], item[0])))


def _keys(service_ids: Sequence[int] | None, *found: dict[int | None, Any]) -> set[int]:
    keys: set[int] = set(service_ids or ())
    for figures in found:
        keys.update(key for key in figures if key is not None)
    return keys


def _per_service(
    service_ids: Sequence[int] | None, found: dict[int | None, T], empty: T
) -> PerService[T]:
    """Figures for every service asked for, empty where the period had nothing."""
    keys = _keys(service_ids, found)
    return PerService(
        total=found.get(None, empty), services={key: found.get(key, empty) for key in keys}
    )


__all__ = [
    "BACKLOG_BUCKETS",
    "DRIVERS",
    "MIN_CELL",
    "RESPONDENT_DIMENSIONS",
    "Backlog",
    "Breakdown",
    "DigestRepository",
    "Drivers",
    "PerService",
    "Period",
    "RatingExportRow",
    "ReportExportRow",
    "ReportFigures",
    "RespondentCell",
    "SatisfactionFigures",
    "SeriesPoint",
    "ServiceInfo",
    "VolunteeringFigures",
]
