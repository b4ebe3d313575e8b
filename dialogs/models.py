"""The flow schema: YAML documents validate into these frozen models."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    Tag,
    model_validator,
)

from dialogs.conditions import Condition, ParamValue
from dialogs.registry import CallRegistry
from dialogs.texts import SystemTexts

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
DEFAULT_EXPIRY = timedelta(days=3)
WAITING_KINDS = frozenset(
    {"choice", "text", "number", "rating", "yesno", "location", "photo", "date", "datetime"}
)


def _identifier(value: str) -> str:
    if not _IDENTIFIER.match(value):
        raise ValueError(
            f"'{value}' must be lowercase letters, digits and _, starting with a letter"
            " (at most 40 characters)"
        )
    return value


def _command(value: str) -> str:
    if not _COMMAND.match(value):
        raise ValueError(f"command '{value}' must be 1-32 lowercase letters, digits or _")
    return value


def _duration(value: Any) -> Any:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"'{value}' is not a duration such as 3d, 12h or 30m")
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    if isinstance(value, int) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if isinstance(value, timedelta):
        return value
    raise ValueError("must be a duration such as 3d, 12h or 30m")


def _positive_duration(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
Command = Annotated[str, AfterValidator(_command)]
Duration = Annotated[timedelta, BeforeValidator(_duration), AfterValidator(_positive_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class LocalText(RootModel[dict[str, str]]):
    """A text in several languages: ``{en: ..., fr: ...}``."""

    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if isinstance(value, LocalText):
            return value.root
        if not isinstance(value, dict):
            raise ValueError("must be a mapping of language to text, such as {en: ..., fr: ...}")
        return value

    def get(self, language: str, fallbacks: Sequence[str] = ()) -> str:
        """The text in ``language``, else the first fallback present, else any."""
        for candidate in (language, *fallbacks):
            if self.root.get(candidate):
                return self.root[candidate]
        return next(iter(self.root.values()), "")


class Text(LocalText):
    """A message text: Telegram HTML with ``{answers.x}`` placeholders."""


class Label(LocalText):
    """A plain-text label (buttons, summaries); never HTML, never placeholders."""


def _next_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "step"
    if isinstance(value, list | tuple):
        return "branches"
    return None


class Branch(_Model):
    """One way out of a step: ``{if: CONDITION, goto: STEP}``; without ``if``, the default."""

    if_: Condition | None = Field(default=None, alias="if")
    goto: Identifier


Next = Annotated[
    Annotated[Identifier, Tag("step")] | Annotated[tuple[Branch, ...], Tag("branches")],
    Discriminator(
        _next_tag,
        custom_error_type="next_type",
        custom_error_message="must be a step id or a list of {if: ..., goto: ...}",
    ),
]


class _Step(_Model):
    id: Identifier
    skip_if: Condition | None = None
    next: Next | None = None

    @model_validator(mode="after")
    def _default_branch_last(self) -> _Step:
        if isinstance(self.next, tuple):
            for branch in self.next[:-1]:
                if branch.if_ is None:
                    raise ValueError("next: only the last branch may leave out 'if'")
        return self


class MessageStep(_Step):
    """Shows a text and goes on."""

    kind: Literal["message"]
    text: Text


class CallStep(_Step):
    """Runs a query or an action from the registry; stores its result under ``result``."""

    kind: Literal["call"]
    call: str
    params: dict[str, ParamValue] = {}
    result: Identifier | None = None


class EndStep(_Model):
    """Shows a final text; the flow is finished."""

    kind: Literal["end"]
    id: Identifier
    text: Text


class _Question(_Step):
    name: Identifier
    prompt: Text
    optional: bool = False


class ChoiceOption(_Model):
    """A static option: the stored ``value`` and its button label."""

    value: Annotated[str, Field(min_length=1, max_length=200)]
    label: Label


class OptionsFrom(_Model):
    """Options supplied at run time by a query; ``if_empty`` says where to go without any."""

    query: str
    params: dict[str, ParamValue] = {}
    if_empty: Identifier | None = None


class ChoiceStep(_Question):
    """Buttons: one answer, or several with ``multiple`` and a Done button."""

    kind: Literal["choice"]
    options: tuple[ChoiceOption, ...] | None = None
    options_from: OptionsFrom | None = None
    multiple: bool = False
    min: Annotated[int, Field(ge=0)] | None = None
    max: Annotated[int, Field(ge=1)] | None = None
    page_size: Annotated[int, Field(ge=2, le=20)] = 8
    columns: Annotated[int, Field(ge=1, le=4)] = 1

    @model_validator(mode="after")
    def _consistent(self) -> ChoiceStep:
        if (self.options is None) == (self.options_from is None):
            raise ValueError("give either 'options' or 'options_from'")
        if self.options is not None:
            if not self.options:
                raise ValueError("options: give at least one option")
            values = [option.value for option in self.options]
            duplicates = sorted({value for value in values if values.count(value) > 1})
            if duplicates:
                raise ValueError(f"options: duplicate value '{duplicates[0]}'")
        if not self.multiple and (self.min is not None or self.max is not None):
            raise ValueError("min and max apply only with multiple: true")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class TextStep(_Question):
    """Free text with length bounds."""

    kind: Literal["text"]
    min_length: Annotated[int, Field(ge=1)] = 1
    max_length: Annotated[int, Field(ge=1, le=4000)] = 1000

    @model_validator(mode="after")
    def _bounds(self) -> TextStep:
        if self.min_length > self.max_length:
            raise ValueError("min_length is greater than max_length")
        return self


class NumberStep(_Question):
    """A number in a range; decimals only when ``integer`` is false."""

    kind: Literal["number"]
    min: int | float | None = None
    max: int | float | None = None
    integer: bool = True

    @model_validator(mode="after")
    def _bounds(self) -> NumberStep:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is greater than max")
        return self


class RatingStep(_Question):
    """A rating scale with optional labels for its two ends."""

    kind: Literal["rating"]
    scale: Literal["1-5", "0-10", "1-7"] = "1-5"
    low_label: Label | None = None
    high_label: Label | None = None

    @property
    def bounds(self) -> tuple[int, int]:
        """The lowest and highest value."""
        low, high = self.scale.split("-")
        return int(low), int(high)


class YesNoStep(_Question):
    """Yes or No; the answer is true or false."""

    kind: Literal["yesno"]
    yes_label: Label | None = None
    no_label: Label | None = None


class LocationStep(_Question):
    """A Telegram pin, or with ``allow_address`` a typed address."""

    kind: Literal["location"]
    allow_address: bool = False


class PhotoStep(_Question):
    """Up to ``max`` photos, then Done."""

    kind: Literal["photo"]
    max: Annotated[int, Field(ge=1, le=10)] = 3


class DateStep(_Question):
    """A date (or date and time) between ``earliest`` and ``latest`` days from today."""

    kind: Literal["date", "datetime"]
    earliest: int | None = None
    latest: int | None = None

    @model_validator(mode="after")
    def _bounds(self) -> DateStep:
        if self.earliest is not None and self.latest is not None and self.earliest > self.latest:
            raise ValueError("earliest is after latest")
        return self


class SummaryItem(_Model):
    """One line of a confirmation summary, with an edit button."""

    answer: Identifier
    label: Label


class ConfirmStep(_Step):
    """A summary of the answers: edit any of them, or submit."""

    kind: Literal["confirm"]
    prompt: Text
    summary: Annotated[tuple[SummaryItem, ...], Field(min_length=1)]
    submit_label: Label | None = None


Question = (
    ChoiceStep
    | TextStep
    | NumberStep
    | RatingStep
    | YesNoStep
    | LocationStep
    | PhotoStep
    | DateStep
)
AnyStep = MessageStep | CallStep | EndStep | Question | ConfirmStep
Step = Annotated[AnyStep, Field(discriminator="kind")]
STEP_KINDS = (
    "message",
    "choice",
    "text",
    "number",
    "rating",
    "yesno",
    "location",
    "photo",
    "date",
    "datetime",
    "confirm",
    "call",
    "end",
)


class Triggers(_Model):
    """How a citizen starts the flow: commands, keywords, a menu button."""

    commands: tuple[Command, ...] = ()
    keywords: dict[str, tuple[str, ...]] = {}
    menu: bool = False
    menu_label: Label | None = None
    order: int = 100

    @model_validator(mode="after")
    def _menu_label(self) -> Triggers:
        if self.menu and self.menu_label is None:
            raise ValueError("menu: true needs a menu_label")
        return self


class _FlowFields(_Model):
    id: Identifier
    version: Annotated[int, Field(ge=1)]
    title: Label
    triggers: Triggers = Triggers()
    expires_after: Duration = DEFAULT_EXPIRY
    prefill: tuple[Identifier, ...] = ()
    texts: dict[str, Text] = {}


class FlowHeader(_FlowFields):
    """Everything but the steps, which the loader validates one by one."""

    steps: Annotated[list[Any], Field(min_length=1)]


class FlowDefinition(_FlowFields):
    """A flow document as written."""

    steps: tuple[Step, ...]


@dataclass(frozen=True, eq=False)
class Flow:
    """A loaded flow: its definition, enabled languages, system texts with the flow's
    overrides, and the registry it was checked against."""

    definition: FlowDefinition
    languages: tuple[str, ...]
    system_texts: SystemTexts
    registry: CallRegistry
    filename: str
    _by_id: Mapping[str, AnyStep] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {step.id: step for step in self.definition.steps})

    @property
    def id(self) -> str:
        """The flow id."""
        return self.definition.id

    @property
    def version(self) -> int:
        """The flow version; a conversation stays on the version it started with."""
        return self.definition.version

    @property
    def triggers(self) -> Triggers:
        """Commands, keywords and the menu button."""
        return self.definition.triggers

    @property
    def expires_after(self) -> timedelta:
        """How long a conversation may stay idle before the host ends it."""
        return self.definition.expires_after

    @property
    def steps(self) -> tuple[AnyStep, ...]:
        """The steps in document order; the first is the start."""
        return self.definition.steps

    def language(self, requested: str) -> str:
        """``requested`` when enabled (``fr-BE`` counts as ``fr``), else the first language."""
        for candidate in (requested, requested.replace("_", "-").split("-")[0].lower()):
            if candidate in self.languages:
                return candidate
        return self.languages[0]

    def title(self, language: str) -> str:
        """The title (plain text) in ``language``."""
        return self.definition.title.get(self.language(language), self.languages)

    def menu_label(self, language: str) -> str | None:
        """The menu button text, when the flow is in the menu."""
        label = self.definition.triggers.menu_label
        if not self.definition.triggers.menu or label is None:
            return None
        return label.get(self.language(language), self.languages)

    def matches_keyword(self, text: str, language: str) -> bool:
        """Whether ``text`` contains one of the trigger keywords of ``language``."""
        words = self.definition.triggers.keywords.get(self.language(language), ())
        folded = text.casefold()
        return any(word.casefold() in folded for word in words if word.strip())

    def step(self, step_id: str) -> AnyStep | None:
        """The step with this id, or None."""
        return self._by_id.get(step_id)

    def following(self, step_id: str) -> str | None:
        """The id of the step after ``step_id`` in document order."""
        ids = [step.id for step in self.definition.steps]
        index = ids.index(step_id) if step_id in ids else -1
        return ids[index + 1] if 0 <= index < len(ids) - 1 else None

    def questions(self) -> Iterator[Question]:
        """The steps that store an answer."""
        return (step for step in self.definition.steps if isinstance(step, Question))
