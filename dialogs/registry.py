"""The fixed registry of calls (queries and actions) that flows may use.

Only declarations live here: a name, a kind, a pydantic model of the parameters and
the result fields. The bot registers an implementation for each name and checks at
start-up, with :meth:`CallRegistry.check_implementations`, that none is missing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

FieldType = Literal["str", "int", "float", "bool", "datetime", "list", "options"]


class CallKind(StrEnum):
    """A query only reads; an action changes something, so Back cannot undo it."""

    QUERY = "query"
    ACTION = "action"


@dataclass(frozen=True, slots=True)
class CallSpec:
    """The declaration of one call."""

    name: str
    kind: CallKind
    params: type[BaseModel]
    results: Mapping[str, FieldType]

    @property
    def returns_options(self) -> bool:
        """Whether the result has an ``options`` list usable by ``options_from``."""
        return self.results.get("options") == "options"


class CallRegistry:
    """Calls by name. Build one per application; :func:`builtin_registry` declares ours."""

    def __init__(self) -> None:
        self._specs: dict[str, CallSpec] = {}

    def declare(
        self,
        name: str,
        *,
        kind: CallKind,
        params: type[BaseModel],
        results: Mapping[str, FieldType] | None = None,
    ) -> CallSpec:
        """Declare a call; result fields are dotted paths such as ``first.reference``."""
        if name in self._specs:
            raise ValueError(f"call '{name}' is declared twice")
        spec = CallSpec(name, kind, params, dict(results or {}))
        self._specs[name] = spec
        return spec

    def get(self, name: str) -> CallSpec | None:
        """The declaration of ``name``, or None."""
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[CallSpec]:
        return iter(self._specs.values())

    def names(self) -> list[str]:
        """Declared names, sorted."""
        return sorted(self._specs)

    def check_implementations(self, implementations: Mapping[str, object]) -> list[str]:
        """Problems with the host's implementations: declared calls without one and extras."""
        missing = [
            f"no implementation for call '{n}'" for n in self.names() if n not in implementations
        ]
        extra = [
            f"implementation '{n}' matches no declared call"
            for n in sorted(implementations)
            if n not in self._specs
        ]
        return missing + extra


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NoParams(_Params):
    """A call without parameters."""


class LocationValue(_Params):
    """A location answer: a Telegram pin, or an address the citizen typed."""

    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    address: str | None = None


class PhotoValue(_Params):
    """A photo answer: Telegram's file ids."""

    file_id: str
    file_unique_id: str


class NearbyOpenReportsParams(_Params):
    """Open reports of a category near a pin (duplicate detection)."""

    category: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class OpportunitiesParams(_Params):
    """Volunteer opportunities that fit skills and areas."""

    skills: list[str] = []
    areas: list[str] = []


class CreateReportParams(_Params):
    """A new service-issue report."""

    category: str
    location: LocationValue | None = None
    photos: list[PhotoValue] | None = None
    description: str
    anonymous: bool = False


class FollowReportParams(_Params):
    """Add the citizen as a supporter of an existing report."""

    reference: str


class SaveVolunteerProfileParams(_Params):
    """Create or replace the citizen's volunteer profile."""

    skills: list[str]
    areas: list[str]
    availability: list[str]
    contact_consent: bool


class VolunteerSignupParams(_Params):
    """Sign the citizen up for an opportunity (or its waiting list)."""

    opportunity: str


class RecordRatingParams(_Params):
    """A service rating: CSAT, the drivers of satisfaction, effort, NPS and a comment."""

    service: str
    overall: int = Field(ge=1, le=5)
    timeliness: int | None = Field(default=None, ge=1, le=5)
    knowledge: int | None = Field(default=None, ge=1, le=5)
    courtesy: int | None = Field(default=None, ge=1, le=5)
    fairness: int | None = Field(default=None, ge=1, le=5)
    outcome: int | None = Field(default=None, ge=1, le=5)
    effort: int | None = Field(default=None, ge=1, le=7)
    nps: int | None = Field(default=None, ge=0, le=10)
    comment: str | None = None
    report: str | None = None


class ReportReferenceParams(_Params):
    """A report, by the reference its reporter was given."""

    reference: str = Field(min_length=1, max_length=32)


class RecordFixAnswerParams(_Params):
    """The reporter's answer to "is it fixed?"."""

    reference: str = Field(min_length=1, max_length=32)
    answer: Literal["fixed", "partly", "not_fixed", "unknown"]


class AddReportDetailsParams(_Params):
    """A comment and photos the reporter adds to a report after answering a check."""

    reference: str = Field(min_length=1, max_length=32)
    comment: str | None = None
    photos: list[PhotoValue] | None = None


class ShiftParams(_Params):
    """One of the citizen's sign-ups to a shift."""

    signup: int


class RecordAttendanceParams(_Params):
    """Whether the volunteer came to a shift, and for how many hours."""

    signup: int
    attended: bool
    hours: float | None = Field(default=None, ge=0, le=24)


def builtin_registry() -> CallRegistry:
    """A new registry with the calls the built-in flows use."""
    registry = CallRegistry()
    query, action = CallKind.QUERY, CallKind.ACTION
    registry.declare("categories", kind=query, params=NoParams, results={"options": "options"})
    registry.declare("services", kind=query, params=NoParams, results={"options": "options"})
    registry.declare(
        "nearby_open_reports",
        kind=query,
        params=NearbyOpenReportsParams,
        results={
            "count": "int",
            "first.reference": "str",
            "first.category": "str",
            "first.distance_m": "int",
            "first.supporters": "int",
        },
    )
    registry.declare(
        "volunteer_profile",
        kind=query,
        params=NoParams,
        results={"exists": "bool", "skills": "list", "areas": "list", "availability": "list"},
    )
    registry.declare(
        "opportunities", kind=query, params=OpportunitiesParams, results={"options": "options"}
    )
    registry.declare(
        "create_report",
        kind=action,
        params=CreateReportParams,
        results={"reference": "str", "target_days": "int"},
    )
    registry.declare(
        "follow_report", kind=action, params=FollowReportParams, results={"supporters": "int"}
    )
    registry.declare("save_volunteer_profile", kind=action, params=SaveVolunteerProfileParams)
    registry.declare(
        "volunteer_signup",
        kind=action,
        params=VolunteerSignupParams,
        results={"status": "str", "position": "int", "title": "str", "starts_at": "datetime"},
    )
    registry.declare(
        "record_rating", kind=action, params=RecordRatingParams, results={"ok": "bool"}
    )
    registry.declare(
        "report_summary",
        kind=query,
        params=ReportReferenceParams,
        results={
            "found": "bool",
            "reference": "str",
            "category": "str",
            "location": "str",
            "created": "str",
            "status": "str",
        },
    )
    registry.declare(
        "record_fix_answer",
        kind=action,
        params=RecordFixAnswerParams,
        results={"status": "str", "reopened": "bool"},
    )
    registry.declare("add_report_details", kind=action, params=AddReportDetailsParams)
    registry.declare(
        "shift_summary",
        kind=query,
        params=ShiftParams,
        results={"found": "bool", "title": "str", "when": "str", "place": "str", "hours": "str"},
    )
    registry.declare(
        "record_attendance", kind=action, params=RecordAttendanceParams, results={"ok": "bool"}
    )
    return registry
