"""What goes in and out of the engine: context, inputs, session state, results, messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from dialogs.registry import CallKind

CALLBACK_PREFIX = "d:"
MAX_CALLBACK_BYTES = 64
MAX_MESSAGE_LENGTH = 4096


class Status(StrEnum):
    """Where a conversation stands after the engine ran."""

    WAITING = "waiting"
    CALLING = "calling"
    FINISHED = "finished"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What the host knows about this moment: the citizen's language, the time, the profile.

    ``now`` must be timezone-aware; dates typed by the citizen are read in its zone.
    ``preview`` marks a conversation an administrator runs on a draft: calls carry the
    flag so the host fakes actions instead of running them.
    """

    language: str
    now: datetime
    profile: Mapping[str, Any] = field(default_factory=dict)
    preview: bool = False


@dataclass(frozen=True, slots=True)
class TextInput:
    """A text message (a typed answer, or the text of a reply-keyboard button)."""

    text: str


@dataclass(frozen=True, slots=True)
class ButtonInput:
    """An inline button press: the raw callback data."""

    data: str


@dataclass(frozen=True, slots=True)
class LocationInput:
    """A shared location (pin)."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True)
class PhotoInput:
    """A photo; the host passes the largest size's ids."""

    file_id: str
    file_unique_id: str


@dataclass(frozen=True, slots=True)
class UnsupportedInput:
    """Anything the engine cannot use (sticker, voice, document...), named by kind."""

    kind: str


@dataclass(frozen=True, slots=True)
class CommandInput:
    """A command addressed to the conversation: ``cancel``, ``back`` or ``skip``."""

    name: str


Input = TextInput | ButtonInput | LocationInput | PhotoInput | UnsupportedInput | CommandInput


@dataclass(frozen=True, slots=True)
class InlineButton:
    """An inline button; ``data`` is at most 64 bytes and starts with ``d:``."""

    text: str
    data: str


@dataclass(frozen=True, slots=True)
class ReplyButton:
    """A reply-keyboard button; its text comes back as a TextInput (or a location)."""

    text: str
    request_location: bool = False


@dataclass(frozen=True, slots=True)
class OutMessage:
    """A message to send with ``parse_mode=HTML``.

    It carries at most one kind of markup: ``inline`` rows, a ``reply_keyboard``, or
    ``remove_keyboard``. With ``edit_previous`` the host edits the message whose button
    was pressed (multi-select toggles, paging) instead of sending a new one.
    """

    text: str
    inline: tuple[tuple[InlineButton, ...], ...] = ()
    reply_keyboard: tuple[tuple[ReplyButton, ...], ...] = ()
    one_time: bool = False
    remove_keyboard: bool = False
    edit_previous: bool = False


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Call(_Frozen):
    """A call for the host to run; then it passes the result to ``Engine.resume``.

    ``params`` are already resolved from the answers and validated against the
    registry's model when possible (the host should validate again with
    ``registry.get(name).params``). ``preview`` is copied from the context.
    """

    name: str
    kind: CallKind
    params: dict[str, Any]
    preview: bool = False


class Option(_Frozen):
    """An option fetched at run time; label and details are plain text or per language."""

    value: str
    label: str | dict[str, str]
    details: str | dict[str, str] | None = None


class Pending(_Frozen):
    """The call the conversation waits for, and why: options for a choice, or a call step."""

    call: Call
    purpose: Literal["options", "step"]


class HistoryEntry(_Frozen):
    """An answered question, for Back: which results existed when it was asked."""

    step: str
    name: str
    results: tuple[str, ...] = ()


class SessionState(_Frozen):
    """Everything the engine needs to continue a conversation; stored as JSON by the host.

    ``seq`` grows each time a new question is shown; buttons carry it, so a press on
    an older message is recognised as stale. ``failures`` counts rejected inputs on
    the current question. ``return_to`` is the confirm step an edit goes back to.
    ``keyboard_step`` is the step whose reply keyboard is showing.
    """

    format: Literal[1] = 1
    flow_id: str
    flow_version: int
    status: Status = Status.WAITING
    step: str
    seq: int = 0
    answers: dict[str, Any] = {}
    labels: dict[str, str] = {}
    results: dict[str, Any] = {}
    options: tuple[Option, ...] | None = None
    page: int = 0
    draft: tuple[Any, ...] = ()
    failures: int = 0
    return_to: str | None = None
    history: tuple[HistoryEntry, ...] = ()
    pending: Pending | None = None
    keyboard_step: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible dict."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SessionState:
        """Rebuild from :meth:`to_json` output."""
        return cls.model_validate(data)


@dataclass(frozen=True, slots=True)
class Result:
    """What the engine decided.

    ``accepted`` is true when the input was understood and applied (an answer, a toggle,
    a page turn, a command); false for a re-prompt. The state changes either way — a
    rejected input still counts a failed attempt — so the host saves ``state`` whenever
    ``changed`` is true, whatever ``accepted`` says. With status ``calling`` the host
    runs ``call`` (an action inside the same transaction as the state) and passes its
    result to ``Engine.resume``; send ``messages`` first, in order.
    """

    state: SessionState
    status: Status
    messages: list[OutMessage]
    call: Call | None = None
    accepted: bool = True
    changed: bool = True
