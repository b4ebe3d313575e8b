"""Campaigns: follow-up rules as data, loaded from YAML and checked like flows.

A rule hangs on an event of a subject (a report is created, a shift starts), fires at
an offset from it (``28d``, ``-24h``), optionally only if a condition still holds, in
a delivery window of the citizen's day, and then starts a flow (with prefill) or
sends a message. Loading reports every problem as ``file:line: message``, like
:func:`dialogs.load_flow`. Nothing here knows the bot or the database: the host
evaluates conditions against the facts it declares in :data:`SUBJECT_FIELDS`.

.. code-block:: yaml

    rules:
      - id: fixed_check_open
        event: report_created
        offset: 28d
        if: report.open
        window: "09:00-20:00"        # the citizen's local time; "always" for none
        when_busy: wait              # interrupt | skip | wait
        wait: {every: 1h, at_most: 24}
        start_flow:
          flow: fixed_check
          prefill: {report: report.reference}
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from dialogs.conditions import Condition, Name, ParamValue, names
from dialogs.errors import FlowError, Problem
from dialogs.html import check_html
from dialogs.loader import DEFAULT_LANGUAGES, MAX_TEXT_LENGTH, PROFILE_FIELDS, PathKey, _compose
from dialogs.loader import _Report as _FlowReport
from dialogs.models import Duration, Identifier, Label, LocalText, Text
from dialogs.models import Flow as LoadedFlow
from dialogs.templates import TemplateError, placeholders

# The subject each event is about: the host schedules the rules of an event when it
# happens to a subject, and reads the subject's facts when a rule fires.
EVENTS: Mapping[str, str] = {
    "report_created": "report",
    "report_fixed": "report",  # a manager set the status to fixed
    "report_reopened": "report",  # open again: not (or partly) fixed, or reopened by staff
    "report_confirmed_fixed": "report",  # the reporter said it is fixed
    "signup_created": "signup",
    "shift_start": "signup",
    "shift_end": "signup",
}

# The facts a rule may read, by subject and namespace (``report.reference`` ...).
SUBJECT_FIELDS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "report": {
        "report": (
            "reference",
            "category",
            "service",
            "status",
            "open",
            "location",
            "created",
            "age_days",
        ),
        "profile": PROFILE_FIELDS,
    },
    "signup": {
        "signup": ("id", "status", "confirmed"),
        "opportunity": ("code", "title", "place", "when", "until", "status", "scheduled"),
        "profile": PROFILE_FIELDS,
    },
}

# What a message button may do besides starting a flow, by subject.
BUTTON_ACTIONS: Mapping[str, tuple[str, ...]] = {"report": (), "signup": ("cant_come",)}

DEFAULT_WINDOW = "09:00-20:00"
_OFFSET = re.compile(r"^\s*([+-]?)\s*((?:\d+\s*[wdhm]\s*)+)$")
_OFFSET_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MAX_OFFSET = timedelta(days=400)


def parse_offset(value: Any) -> timedelta:
    """``28d``, ``-24h``, ``1d12h``, ``90m``, ``2w`` -> a timedelta (may be negative)."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("must be an offset such as 28d, -24h or 90m")
    match = _OFFSET.match(value)
    if match is None:
        raise ValueError(f"'{value}' is not an offset such as 28d, -24h, 1d12h or 90m")
    total = timedelta()
    for amount, unit in _OFFSET_PART.findall(match.group(2)):
        total += timedelta(**{_UNITS[unit]: int(amount)})
    if total > MAX_OFFSET:
        raise ValueError(f"'{value}' is more than {MAX_OFFSET.days} days away")
    return -total if match.group(1) == "-" else total


def _format_offset(value: timedelta) -> str:
    sign = "-" if value < timedelta(0) else ""
    minutes = int(abs(value).total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return sign + ("".join(parts) or "0m")


Offset = Annotated[timedelta, BeforeValidator(parse_offset)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Window(_Model):
    """Local times of day between which a follow-up may reach a citizen.

    ``start`` is included, ``end`` is not; a window may run past midnight
    (``22:00-06:00``). Without ``start`` (written ``always``) any time will do.
    """

    start: time | None = None
    end: time | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip() == "always":
            return {}
        match = _WINDOW.match(value)
        if match is None:
            raise ValueError(f"'{value}' is not a window such as 09:00-20:00 (or always)")
        hours = (int(match.group(1)), int(match.group(3)))
        minutes = (int(match.group(2)), int(match.group(4)))
        if any(h > 23 for h in hours) or any(m > 59 for m in minutes):
            raise ValueError(f"'{value}' is not a window such as 09:00-20:00 (or always)")
        start, end = time(hours[0], minutes[0]), time(hours[1], minutes[1])
        if start == end:
            raise ValueError(f"'{value}' is empty: start and end are the same")
        return {"start": start, "end": end}

    @property
    def always(self) -> bool:
        """No restriction."""
        return self.start is None or self.end is None

    def contains(self, moment: time) -> bool:
        """Whether a local time of day falls in the window."""
        if self.start is None or self.end is None:
            return True
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def next_delivery(self, moment: datetime) -> datetime:
        """``moment`` (aware, in the citizen's zone) or, at night, the next window start."""
        if self.start is None or self.contains(moment.timetz().replace(tzinfo=None)):
            return moment
        zone = moment.tzinfo
        day = moment.date()
        candidate = datetime.combine(day, self.start, tzinfo=zone)
        if candidate <= moment:
            candidate = datetime.combine(day + timedelta(days=1), self.start, tzinfo=zone)
        return candidate

    def __str__(self) -> str:
        if self.start is None or self.end is None:
            return "always"
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


class WaitPolicy(_Model):
    """With ``when_busy: wait``: try again every ``every``, at most ``at_most`` times."""

    every: Duration = timedelta(hours=1)
    at_most: int = Field(default=24, ge=1, le=1000)


class StartFlow(_Model):
    """Start a flow for the citizen, with answers filled in from the subject's facts."""

    flow: Identifier
    prefill: dict[Identifier, ParamValue] = {}


class Button(_Model):
    """A button under a message: start a flow, or an action of the subject."""

    label: Label
    flow: Identifier | None = None
    action: Identifier | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Button:
        if (self.flow is None) == (self.action is None):
            raise ValueError("a button needs either 'flow' or 'action'")
        return self


class MessageAction(_Model):
    """A message (Telegram HTML with placeholders) and optional buttons."""

    text: Text
    buttons: tuple[Button, ...] = Field(default=(), max_length=6)


BusyPolicy = Literal["interrupt", "skip", "wait"]
EventName = Literal[
    "report_created",
    "report_fixed",
    "report_reopened",
    "report_confirmed_fixed",
    "signup_created",
    "shift_start",
    "shift_end",
]


class Rule(_Model):
    """One follow-up rule."""

    id: Identifier
    event: EventName
    offset: Offset
    deadline: Offset | None = None
    if_: Condition | None = Field(default=None, alias="if")
    window: Window = Window.model_validate(DEFAULT_WINDOW)
    when_busy: BusyPolicy = "wait"
    wait: WaitPolicy | None = None
    start_flow: StartFlow | None = None
    message: MessageAction | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Rule:
        if (self.start_flow is None) == (self.message is None):
            raise ValueError("a rule needs either 'start_flow' or 'message'")
        return self

    @property
    def subject(self) -> str:
        """What the rule is about: ``report`` or ``signup``."""
        return EVENTS[self.event]

    @property
    def waiting(self) -> WaitPolicy:
        """How to wait for a busy citizen (the defaults unless written)."""
        return self.wait or WaitPolicy()

    def due(self, anchor: datetime) -> datetime:
        """When the rule fires for an event at ``anchor``, before any delivery window."""
        return anchor + self.offset

    def latest(self, anchor: datetime) -> datetime | None:
        """The follow-up must be delivered before this moment, else it is dropped
        (None: no deadline)."""
        return None if self.deadline is None else anchor + self.deadline


class _Document(_Model):
    rules: Annotated[list[Any], Field(min_length=1)]


class _Report(_FlowReport):
    """Names problems after the rule they are in."""

    def where(self, path: PathKey) -> tuple[str, PathKey]:
        if len(path) >= 2 and path[0] == "rules" and isinstance(path[1], int):
            rules = self.data.get("rules") if isinstance(self.data, dict) else None
            raw = rules[path[1]] if isinstance(rules, list) and path[1] < len(rules) else None
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            label = f"rule '{rule_id}'" if isinstance(rule_id, str) else f"rules[{path[1]}]"
            return label, path[2:]
        return "", path


class _RuleChecker:
    """Checks that need more than one field: names, texts, flows, deadlines."""

    def __init__(
        self,
        report: _Report,
        index: int,
        rule: Rule,
        *,
        languages: Sequence[str],
        flows: Mapping[str, LoadedFlow] | None,
    ) -> None:
        self.report = report
        self.path: PathKey = ("rules", index)
        self.rule = rule
        self.languages = tuple(languages)
        self.flows = flows
        self.fields = SUBJECT_FIELDS[rule.subject]

    def add(self, where: PathKey, message: str) -> None:
        self.report.add((*self.path, *where), message)

    def run(self) -> None:
        rule = self.rule
        if rule.deadline is not None and rule.deadline <= rule.offset:
            self.add(
                ("deadline",),
                f"the deadline ({_format_offset(rule.deadline)}) is not after the offset"
                f" ({_format_offset(rule.offset)}): the follow-up could never be sent",
            )
        if rule.wait is not None and rule.when_busy != "wait":
            self.add(("wait",), "'wait' only applies with when_busy: wait")
        if rule.if_ is not None:
            self.check_names(("if",), names(rule.if_.expr))
        if rule.start_flow is not None:
            self.check_start_flow(rule.start_flow)
        if rule.message is not None:
            self.check_message(rule.message)

    def check_names(self, where: PathKey, found: Iterator[Name]) -> None:
        for name in found:
            message = self.name_problem(name)
            if message:
                self.add(where, message)

    def name_problem(self, name: Name) -> str | None:
        path = name.path
        known = ", ".join(f"{space}." for space in self.fields)
        if len(path) != 2 or path[0] not in self.fields:
            return (
                f"unknown name '{name.dotted}': a rule on {self.rule.event} reads {known}"
                " followed by a field"
            )
        if path[1] not in self.fields[path[0]]:
            return (
                f"'{name.dotted}' is not a known field (known: {', '.join(self.fields[path[0]])})"
            )
        return None

    def check_start_flow(self, start: StartFlow) -> None:
        for key, value in start.prefill.items():
            if not value.literal:
                self.check_names(("start_flow", "prefill", key), names(value.expr))
        if self.flows is None:
            return
        flow = self.flows.get(start.flow)
        if flow is None:
            known = ", ".join(sorted(self.flows)) or "none"
            self.add(("start_flow", "flow"), f"unknown flow '{start.flow}' (known: {known})")
            return
        accepted = set(flow.definition.prefill)
        for key in start.prefill:
            if key not in accepted:
                takes = ", ".join(flow.definition.prefill) or "no prefill"
                self.add(
                    ("start_flow", "prefill", key),
                    f"flow '{start.flow}' does not accept prefill '{key}' (it takes: {takes})",
                )

    def check_message(self, message: MessageAction) -> None:
        self.check_text(("message", "text"), message.text)
        actions = BUTTON_ACTIONS[self.rule.subject]
        for number, button in enumerate(message.buttons):
            where: PathKey = ("message", "buttons", number)
            self.check_translations((*where, "label"), button.label)
            if button.action is not None and button.action not in actions:
                allowed = ", ".join(actions) or "none"
                self.add(
                    (*where, "action"),
                    f"unknown action '{button.action}' for a {self.rule.subject}"
                    f" (known: {allowed})",
                )
            if button.flow is not None and self.flows is not None and button.flow not in self.flows:
                self.add((*where, "flow"), f"unknown flow '{button.flow}'")

    def check_translations(self, where: PathKey, text: LocalText) -> None:
        missing = [lang for lang in self.languages if not text.root.get(lang, "").strip()]
        if missing:
            self.add(where, f"missing translation for {', '.join(missing)}")

    def check_text(self, where: PathKey, text: Text) -> None:
        self.check_translations(where, text)
        for language, value in text.root.items():
            at = (*where, language)
            if len(value) > MAX_TEXT_LENGTH:
                self.add(at, f"text is longer than {MAX_TEXT_LENGTH} characters")
            problem = check_html(value)
            if problem:
                self.add(at, f"bad HTML: {problem}")
            try:
                found = placeholders(value)
            except TemplateError as error:
                self.add(at, str(error))
                continue
            self.check_names(at, (Name(tuple(item.split("."))) for item in found))


# Stand-ins for required keys whose value was wrong (and reported), so that the rest
# of the rule can still be checked; the event cannot be stood in for: names depend on it.
_STAND_INS: Mapping[str, Any] = {"id": "rule", "offset": "0m"}


def _validate_rule(raw: dict[str, Any], path: PathKey, report: _Report) -> Rule | None:
    """Validate one rule; after reporting its errors, retry without the offending keys
    so its other problems are found too. None when nothing more can be checked (the
    rule is then left out, and its problems are already reported)."""
    try:
        return Rule.model_validate(raw)
    except ValidationError as error:
        report.add_validation(error, path)
        bad = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
        whole = any(not item["loc"] for item in error.errors())
    if whole or not bad or "event" in bad:
        return None
    cleaned = {key: value for key, value in raw.items() if key not in bad}
    for key in bad & set(_STAND_INS):
        cleaned[key] = _STAND_INS[key]
    try:
        return Rule.model_validate(cleaned)
    except ValidationError as error:
        # Problems of what is left (e.g. a rule with no action), not repeats.
        report.add_validation(error, path)
        return None


def load_campaign(
    text: str,
    *,
    filename: str,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    flows: Mapping[str, LoadedFlow] | None = None,
) -> tuple[Rule, ...]:
    """Validate a campaign document; raise FlowError listing every problem.

    With ``flows`` (by id), the flows that rules start exist and accept their prefill.
    """
    if not languages:
        raise ValueError("enable at least one language")
    data, lines, problems = _compose(text, filename)
    not_a_mapping = "a campaign must be a mapping with a list of rules"
    if data is None:
        raise FlowError(problems or [Problem(filename, 1, not_a_mapping)])
    report = _Report(filename, lines, data)
    report.problems.extend(problems)
    if not isinstance(data, dict):
        report.add((), not_a_mapping)
        raise FlowError(report.problems)
    try:
        _Document.model_validate(data)
    except ValidationError as error:
        report.add_validation(error, ())
        raise FlowError(sorted(report.problems, key=lambda p: p.line)) from None

    rules: list[Rule] = []
    first_line: dict[str, int] = {}
    for index, raw in enumerate(data["rules"]):
        path: PathKey = ("rules", index)
        if not isinstance(raw, dict):
            report.add(path, "a rule must be a mapping with id, event, offset and an action")
            continue
        rule = _validate_rule(raw, path, report)
        if rule is None:
            continue
        line = lines.value((*path, "id"))
        if rule.id in first_line:
            report.add(
                path,
                f"the id '{rule.id}' is used twice (first at line {first_line[rule.id]})",
                line=line,
            )
        first_line.setdefault(rule.id, line)
        _RuleChecker(report, index, rule, languages=languages, flows=flows).run()
        rules.append(rule)
    if report.problems:
        raise FlowError(sorted(report.problems, key=lambda p: p.line))
    return tuple(rules)


@dataclass(frozen=True, slots=True)
class Campaigns:
    """Rules by id, with where each came from."""

    rules: Mapping[str, Rule]
    files: Mapping[str, str]

    def get(self, rule_id: str) -> Rule | None:
        """The rule with this id, or None (a rule removed since it was scheduled)."""
        return self.rules.get(rule_id)

    def for_event(self, event: str) -> list[Rule]:
        """The rules that hang on ``event``, in file order."""
        return [rule for rule in self.rules.values() if rule.event == event]

    def for_subject(self, subject: str) -> list[Rule]:
        """The rules about a subject type (``report`` or ``signup``)."""
        return [rule for rule in self.rules.values() if rule.subject == subject]


def load_builtin_campaigns(
    *,
    languages: Sequence[str] = DEFAULT_LANGUAGES,
    flows: Mapping[str, LoadedFlow] | None = None,
) -> Campaigns:
    """Load the campaigns shipped in ``dialogs/campaigns``; problems of all files together."""
    rules: dict[str, Rule] = {}
    files: dict[str, str] = {}
    problems: list[Problem] = []
    folder = resources.files("dialogs").joinpath("campaigns")
    for entry in sorted(folder.iterdir(), key=lambda item: item.name):
        if not entry.name.endswith(".yaml"):
            continue
        filename = f"dialogs/campaigns/{entry.name}"
        try:
            loaded = load_campaign(
                entry.read_text(encoding="utf-8"),
                filename=filename,
                languages=languages,
                flows=flows,
            )
        except FlowError as error:
            problems.extend(error.problems)
            continue
        for rule in loaded:
            if rule.id in rules:
                problems.append(
                    Problem(filename, 1, f"rule id '{rule.id}' is also used by {files[rule.id]}")
                )
                continue
            rules[rule.id] = rule
            files[rule.id] = filename
    if problems:
        raise FlowError(problems)
    return Campaigns(rules=rules, files=files)


__all__ = [
    "BUTTON_ACTIONS",
    "DEFAULT_WINDOW",
    "EVENTS",
    "SUBJECT_FIELDS",
    "Button",
    "Campaigns",
    "MessageAction",
    "Rule",
    "StartFlow",
    "WaitPolicy",
    "Window",
    "load_builtin_campaigns",
    "load_campaign",
    "parse_offset",
]
