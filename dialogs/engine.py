"""The interpreter: (flow, session state, input, context) -> (new state, messages, call).

Pure: no I/O, no clock (``ctx.now``), no Telegram. Every public method returns a
:class:`Result` and never raises on citizen input, however odd.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from babel import Locale, UnknownLocaleError
from babel.numbers import get_decimal_symbol
from pydantic import ValidationError

from dialogs.conditions import Condition, ParamValue, evaluate
from dialogs.html import escape, to_plain
from dialogs.models import (
    AnyStep,
    CallStep,
    ChoiceStep,
    ConfirmStep,
    DateStep,
    EndStep,
    Flow,
    LocalText,
    LocationStep,
    MessageStep,
    NumberStep,
    PhotoStep,
    Question,
    RatingStep,
    TextStep,
    YesNoStep,
)
from dialogs.registry import CallKind
from dialogs.state import (
    CALLBACK_PREFIX,
    MAX_MESSAGE_LENGTH,
    ButtonInput,
    Call,
    CommandInput,
    Context,
    HistoryEntry,
    InlineButton,
    Input,
    LocationInput,
    Option,
    OutMessage,
    Pending,
    PhotoInput,
    ReplyButton,
    Result,
    SessionState,
    Status,
    TextInput,
)
from dialogs.templates import render, shorten
from dialogs.texts import SystemText as T
from dialogs.texts import TextBook

_CALLBACK = re.compile(r"^d:(\d{1,10}):([a-z]{1,2})(-?\d{1,4})?$")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_BUTTON_TEXT = 64
_LABEL_IN_TEXT = 200
_DETAILS_IN_TEXT = 400
_SUMMARY_VALUE = 300
_MAX_OPTIONS = 200
_MAX_ADDRESS = 500
_MIN_ADDRESS = 3


@dataclass(frozen=True, slots=True)
class _Answer:
    value: Any
    label: str
    ack: T | None = None


@dataclass(frozen=True, slots=True)
class _Reject:
    key: T
    params: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Redraw:
    """The question changed in place (toggle, page) or made progress (a photo)."""

    edit: bool
    notice: str | None = None


_Outcome = _Answer | _Reject | _Redraw


@dataclass(slots=True)
class _Work:
    """A mutable copy of the session state while one input is processed."""

    flow_id: str
    flow_version: int
    status: Status
    step: str
    seq: int
    answers: dict[str, Any]
    labels: dict[str, str]
    results: dict[str, Any]
    options: list[Option] | None
    page: int
    draft: list[Any]
    failures: int
    return_to: str | None
    history: list[HistoryEntry]
    pending: Pending | None
    keyboard_step: str | None

    @classmethod
    def of(cls, state: SessionState) -> _Work:
        return cls(
            flow_id=state.flow_id,
            flow_version=state.flow_version,
            status=state.status,
            step=state.step,
            seq=state.seq,
            answers=dict(state.answers),
            labels=dict(state.labels),
            results=dict(state.results),
            options=list(state.options) if state.options is not None else None,
            page=state.page,
            draft=list(state.draft),
            failures=state.failures,
            return_to=state.return_to,
            history=list(state.history),
            pending=state.pending,
            keyboard_step=state.keyboard_step,
        )

    def freeze(self) -> SessionState:
        return SessionState(
            flow_id=self.flow_id,
            flow_version=self.flow_version,
            status=self.status,
            step=self.step,
            seq=self.seq,
            answers=self.answers,
            labels=self.labels,
            results=self.results,
            options=tuple(self.options) if self.options is not None else None,
            page=self.page,
            draft=tuple(self.draft),
            failures=self.failures,
            return_to=self.return_to,
            history=tuple(self.history),
            pending=self.pending,
            keyboard_step=self.keyboard_step,
        )


def _jsonable(value: Any, depth: int = 0) -> Any:
    """Coerce a host value into JSON data, so the state always round-trips."""
    if depth > 20:
        return None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else None
    if isinstance(value, Decimal):
        return _jsonable(float(value), depth)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    return str(value)


def _button(text: str, seq: int, tap: str) -> InlineButton:
    return InlineButton(shorten(text.strip() or "…", _BUTTON_TEXT), f"{CALLBACK_PREFIX}{seq}:{tap}")


def _rows(buttons: list[InlineButton], columns: int) -> list[tuple[InlineButton, ...]]:
    return [tuple(buttons[i : i + columns]) for i in range(0, len(buttons), columns)]


def _fit(message: OutMessage) -> OutMessage:
    """Keep a message within Telegram's limits: non-empty, at most 4096 characters."""
    text = message.text
    if not to_plain(text).strip():
        text = "…"
    if len(text) > MAX_MESSAGE_LENGTH:
        plain = to_plain(text)
        limit = MAX_MESSAGE_LENGTH - 96
        text = escape(shorten(plain, limit))
        while len(text) > MAX_MESSAGE_LENGTH:
            limit -= 256
            text = escape(shorten(plain, limit))
    return message if text == message.text else replace(message, text=text)


class Engine:
    """Runs flows. Stateless: one instance serves every conversation.

    A rejected input counts a failed attempt; after ``max_failures`` of them in a row
    the citizen is offered to try again, skip (if optional) or cancel.
    """

    def __init__(self, *, max_failures: int = 3, max_transitions: int = 200) -> None:
        self.max_failures = max_failures
        self.max_transitions = max_transitions

    def start(
        self, flow: Flow, ctx: Context, *, prefill: Mapping[str, Any] | None = None
    ) -> Result:
        """Begin a conversation; ``prefill`` may set the answers the flow lists in ``prefill``."""
        first = flow.steps[0].id
        allowed = set(flow.definition.prefill)
        answers = {k: _jsonable(v) for k, v in (prefill or {}).items() if k in allowed}
        state = SessionState(
            flow_id=flow.id, flow_version=flow.version, step=first, answers=answers
        )
        run = _Run(self, flow, ctx, state)
        run.enter(first)
        return run.result(accepted=True, compare=False)

    def handle(
        self,
        flow: Flow,
        state: SessionState,
        input: Input,  # the name in the host contract, though it shadows a builtin
        ctx: Context,
    ) -> Result:
        """Apply one citizen input to the conversation."""
        item = input
        run = _Run(self, flow, ctx, state)
        if not run.same_flow():
            return run.flow_changed()
        if state.status in {Status.FINISHED, Status.CANCELLED}:
            return run.result(accepted=False)
        if state.status is Status.CALLING:
            if run.is_cancel(item):
                run.cancel()
                return run.result(accepted=True)
            return run.result(accepted=False)
        run.handle(item)
        return run.result(accepted=run.accepted)

    def resume(
        self, flow: Flow, state: SessionState, call_result: Mapping[str, Any], ctx: Context
    ) -> Result:
        """Feed the result of the pending call and continue."""
        run = _Run(self, flow, ctx, state)
        if not run.same_flow():
            return run.flow_changed()
        if state.status is not Status.CALLING or state.pending is None:
            return run.result(accepted=False)
        run.resume(call_result)
        return run.result(accepted=True)

    def reprompt(
        self, flow: Flow, state: SessionState, ctx: Context, *, nudge: bool = False
    ) -> Result:
        """Show the current question again (after a restart, or as a reminder with ``nudge``)."""
        run = _Run(self, flow, ctx, state)
        if not run.same_flow():
            return run.flow_changed()
        if state.status is Status.WAITING:
            run.show_current(prefix=run.book.html(T.STILL_THERE) if nudge else None)
        return run.result(accepted=True)


class _Run:
    """One engine call: a working copy of the state and the messages produced."""

    def __init__(self, engine: Engine, flow: Flow, ctx: Context, state: SessionState) -> None:
        self.engine = engine
        self.flow = flow
        self.ctx = ctx
        self.original = state
        self.language = flow.language(ctx.language)
        self.book = TextBook(flow.system_texts, self.language, flow.languages)
        self.w = _Work.of(state)
        self.messages: list[OutMessage] = []
        self.accepted = True

    # --- results -----------------------------------------------------------------------

    def result(self, *, accepted: bool, compare: bool = True) -> Result:
        state = self.w.freeze()
        call = self.w.pending.call if self.w.status is Status.CALLING and self.w.pending else None
        return Result(
            state=state,
            status=self.w.status,
            messages=self.messages,
            call=call,
            accepted=accepted,
            changed=not compare or state != self.original,
        )

    def same_flow(self) -> bool:
        return (
            self.w.flow_id == self.flow.id
            and self.w.flow_version == self.flow.version
            and self.flow.step(self.w.step) is not None
        )

    def flow_changed(self) -> Result:
        if self.w.status in {Status.WAITING, Status.CALLING}:
            self.w.status = Status.CANCELLED
            self.w.pending = None
            self.emit(OutMessage(self.book.html(T.FLOW_CHANGED)))
        return self.result(accepted=False)

    def emit(self, message: OutMessage) -> None:
        w = self.w
        if message.reply_keyboard:
            w.keyboard_step = w.step
        elif w.keyboard_step is not None and not message.edit_previous:
            leaving = w.keyboard_step != w.step or w.status in {Status.FINISHED, Status.CANCELLED}
            if leaving:
                # A message carries one markup: remove the reply keyboard on this message
                # when it has no buttons of its own, else on a short message before it.
                if not message.inline:
                    message = replace(message, remove_keyboard=True)
                elif not message.remove_keyboard:
                    closing = OutMessage(self.book.html(T.KEYBOARD_CLOSED), remove_keyboard=True)
                    self.messages.append(closing)
                w.keyboard_step = None
        self.messages.append(_fit(message))

    def internal_error(self) -> None:
        self.w.status = Status.CANCELLED
        self.w.pending = None
        self.emit(OutMessage(self.book.html(T.INTERNAL_ERROR)))

    # --- names, texts, values ----------------------------------------------------------

    def resolve(self, path: tuple[str, ...]) -> Any:
        if len(path) < 2:
            return None
        root, name, rest = path[0], path[1], path[2:]
        value: Any
        if root == "answers":
            value = self.w.answers.get(name)
        elif root == "results":
            value = self.w.results.get(name)
        elif root == "profile":
            value = self.ctx.profile.get(name)
        else:
            return None
        for key in rest:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def truthy(self, condition: Condition) -> bool:
        return bool(condition.evaluate(self.resolve))

    def local(self, text: LocalText) -> str:
        return text.get(self.language, self.flow.languages)

    def option_text(self, value: str | dict[str, str] | None) -> str:
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        for language in (self.language, *self.flow.languages):
            if value.get(language):
                return value[language]
        return next(iter(value.values()), "")

    def format_value(self, value: Any, *, from_results: bool = False) -> str:
        book = self.book
        if value is None:
            return book.plain(T.NOT_ANSWERED)
        if isinstance(value, bool):
            return book.plain(T.YES_BUTTON if value else T.NO_BUTTON)
        if isinstance(value, int | float):
            return book.number(value)
        if isinstance(value, list):
            return ", ".join(self.format_value(item, from_results=from_results) for item in value)
        if isinstance(value, dict):
            if "latitude" in value or "address" in value:
                return self.location_label(value)
            return ", ".join(self.format_value(item) for item in value.values())
        text = str(value)
        if from_results and _ISO_DATETIME.match(text):
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                return text
            if moment.tzinfo is not None and self.ctx.now.tzinfo is not None:
                moment = moment.astimezone(self.ctx.now.tzinfo)
            return book.datetime(moment)
        return text

    def location_label(self, value: Mapping[str, Any]) -> str:
        if value.get("address"):
            return str(value["address"])
        latitude, longitude = value.get("latitude"), value.get("longitude")
        if isinstance(latitude, int | float) and isinstance(longitude, int | float):
            return self.book.plain(
                T.LOCATION_PIN_LABEL, latitude=f"{latitude:.5f}", longitude=f"{longitude:.5f}"
            )
        return self.book.plain(T.NOT_ANSWERED)

    def placeholder(self, name: str) -> str:
        path = tuple(name.split("."))
        if path[0] == "answers" and len(path) == 2:
            if path[1] in self.w.labels:
                return self.w.labels[path[1]]
            return self.format_value(self.w.answers.get(path[1]))
        return self.format_value(self.resolve(path), from_results=path[0] == "results")

    def render(self, text: LocalText) -> str:
        return render(self.local(text), self.placeholder)

    # --- moving through the flow -------------------------------------------------------

    def next_of(self, step: AnyStep) -> str | None:
        if isinstance(step, EndStep):
            return None
        if isinstance(step.next, str):
            return step.next
        if isinstance(step.next, tuple):
            for branch in step.next:
                if branch.if_ is None or self.truthy(branch.if_):
                    return branch.goto
        return self.flow.following(step.id)

    def enter(self, step_id: str | None, *, force: bool = False) -> None:
        """Run steps from ``step_id`` until one waits, calls or ends."""
        for _ in range(self.engine.max_transitions):
            step = self.flow.step(step_id) if step_id is not None else None
            if step is None:
                self.internal_error()
                return
            self.w.step = step.id
            if isinstance(step, EndStep):
                self.w.status = Status.FINISHED
                self.w.pending = None
                self.w.return_to = None
                self.emit(OutMessage(self.render(step.text)))
                return
            if not force and step.skip_if is not None and self.truthy(step.skip_if):
                step_id = self.next_of(step)
                continue
            force = False
            if isinstance(step, MessageStep):
                self.emit(OutMessage(self.render(step.text)))
                step_id = self.next_of(step)
                continue
            if isinstance(step, CallStep):
                self.request(step.call, step.params, "step")
                return
            self.ask(step)
            return
        self.internal_error()

    def request(
        self, name: str, params: Mapping[str, ParamValue], purpose: Literal["options", "step"]
    ) -> None:
        values = {key: _jsonable(evaluate(p.expr, self.resolve)) for key, p in params.items()}
        spec = self.flow.registry.get(name)
        kind = CallKind.ACTION
        if spec is not None:
            kind = spec.kind
            # On invalid values the host gets them raw: it validates again and decides.
            with contextlib.suppress(ValidationError):
                values = spec.params.model_validate(values).model_dump(mode="json")
        call = Call(name=name, kind=kind, params=values, preview=self.ctx.preview)
        self.w.pending = Pending(call=call, purpose=purpose)
        self.w.status = Status.CALLING

    def ask(self, step: Question | ConfirmStep) -> None:
        w = self.w
        w.seq += 1
        w.failures = 0
        w.page = 0
        w.options = None
        w.draft = []
        w.status = Status.WAITING
        w.pending = None
        if isinstance(step, ChoiceStep) and step.multiple and w.return_to:
            previous = w.answers.get(step.name)
            w.draft = list(previous) if isinstance(previous, list) else []
        if isinstance(step, ChoiceStep) and step.options_from is not None:
            self.request(step.options_from.query, step.options_from.params, "options")
            return
        self.present(step)

    def resume(self, call_result: Mapping[str, Any]) -> None:
        pending = self.w.pending
        step = self.flow.step(self.w.step)
        if pending is None or step is None:
            self.internal_error()
            return
        self.w.pending = None
        self.w.status = Status.WAITING
        if pending.purpose == "options":
            if not isinstance(step, ChoiceStep) or step.options_from is None:
                self.internal_error()
                return
            options = self.read_options(call_result)
            if not options:
                if step.options_from.if_empty:
                    self.enter(step.options_from.if_empty)
                else:
                    self.w.status = Status.CANCELLED
                    self.emit(OutMessage(self.book.html(T.NO_OPTIONS)))
                return
            self.w.options = options
            self.present(step)
            return
        if not isinstance(step, CallStep):
            self.internal_error()
            return
        if step.result:
            self.w.results[step.result] = _jsonable(dict(call_result))
        if pending.call.kind is CallKind.ACTION:
            # What an action did cannot be undone by Back.
            self.w.history = []
            self.w.return_to = None
        self.enter(self.next_of(step))

    @staticmethod
    def read_options(call_result: Mapping[str, Any]) -> list[Option]:
        raw = call_result.get("options") if isinstance(call_result, Mapping) else None
        options: list[Option] = []
        for item in raw if isinstance(raw, list | tuple) else []:
            if not isinstance(item, Mapping) or len(options) >= _MAX_OPTIONS:
                continue
            value = item.get("value")
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            try:
                option = Option(
                    value=value,
                    label=item.get("label") or str(value),
                    details=item.get("details"),
                )
            except ValidationError:
                continue
            if option.value and all(o.value != option.value for o in options):
                options.append(option)
        return options

    # --- input -------------------------------------------------------------------------

    def is_cancel(self, item: Input) -> bool:
        if isinstance(item, CommandInput):
            return item.name == "cancel"
        if isinstance(item, ButtonInput):
            match = _CALLBACK.match(item.data)
            return match is not None and match.group(2) == "cx"
        return False

    def handle(self, item: Input) -> None:
        step = self.flow.step(self.w.step)
        if not isinstance(step, Question | ConfirmStep):
            self.internal_error()
            return
        if isinstance(step, ChoiceStep) and step.options_from and self.w.options is None:
            self.ask(step)
            return
        command = self.command(item, step)
        if command == "cancel":
            self.cancel()
        elif command == "back":
            self.back(step)
        elif command == "skip":
            self.skip(step)
        elif command == "continue":
            self.w.failures = 0
            self.present(step)
        elif command == "unknown":
            self.reject(step, _Reject(T.ERROR_COMMAND))
        elif command == "stale":
            self.reject(step, _Reject(T.ERROR_STALE))
        else:
            self.apply(step, self.outcome(step, item))

    def command(self, item: Input, step: Question | ConfirmStep) -> str | None:
        if isinstance(item, CommandInput):
            return item.name if item.name in {"cancel", "back", "skip"} else "unknown"
        if isinstance(item, ButtonInput):
            match = _CALLBACK.match(item.data)
            if match is None:
                return "stale"
            tap = match.group(2)
            if tap == "cx":
                return "cancel"
            if int(match.group(1)) != self.w.seq:
                return "stale"
            commands = {"bk": "back", "sk": "skip", "ct": "continue"}
            return commands.get(tap)
        if isinstance(item, TextInput) and isinstance(step, LocationStep | PhotoStep):
            # Reply-keyboard buttons come back as their text.
            text = item.text.strip()
            for key, name in ((T.BACK, "back"), (T.CANCEL, "cancel"), (T.SKIP, "skip")):
                if text == self.book.plain(key):
                    return name
        return None

    def cancel(self) -> None:
        self.w.status = Status.CANCELLED
        self.w.pending = None
        self.w.return_to = None
        self.emit(OutMessage(self.book.html(T.CANCELLED)))

    def back(self, step: Question | ConfirmStep) -> None:
        w = self.w
        if w.return_to:
            target, w.return_to = w.return_to, None
            self.enter(target, force=True)
            return
        if not w.history:
            self.reject(step, _Reject(T.ERROR_CANNOT_GO_BACK))
            return
        entry = w.history.pop()
        if entry.name:
            w.answers.pop(entry.name, None)
            w.labels.pop(entry.name, None)
        w.results = {k: v for k, v in w.results.items() if k in entry.results}
        self.enter(entry.step, force=True)

    def skip(self, step: Question | ConfirmStep) -> None:
        if isinstance(step, PhotoStep) and self.w.draft:
            # Skipping after some photos keeps them: that is what "Done" would do.
            photos = list(self.w.draft)
            self.accept(step, _Answer(photos, self.photo_count(len(photos)), T.PHOTOS_RECEIVED))
            return
        if isinstance(step, ConfirmStep) or not step.optional:
            self.reject(step, _Reject(T.ERROR_CANNOT_SKIP))
            return
        self.accept(step, _Answer(None, self.book.plain(T.NOT_ANSWERED)))

    def apply(self, step: Question | ConfirmStep, outcome: _Outcome | None) -> None:
        if outcome is None:
            return
        if isinstance(outcome, _Reject):
            self.reject(step, outcome)
        elif isinstance(outcome, _Redraw) and isinstance(step, PhotoStep) and outcome.notice:
            keyboard = self.reply_keyboard(step)
            self.emit(OutMessage(outcome.notice, reply_keyboard=keyboard, one_time=True))
        elif isinstance(outcome, _Redraw):
            self.present(step, edit=outcome.edit, prefix=outcome.notice)
        elif isinstance(step, ConfirmStep):
            self.internal_error()
        elif outcome.value is None and not step.optional:
            self.reject(step, _Reject(T.ERROR_CANNOT_SKIP))
        else:
            self.accept(step, outcome)

    def accept(self, step: Question, answer: _Answer) -> None:
        w = self.w
        w.answers[step.name] = answer.value
        w.labels[step.name] = answer.label
        w.draft = []
        if w.keyboard_step == step.id:
            ack = answer.ack or T.KEYBOARD_CLOSED
            self.messages.append(OutMessage(self.book.html(ack), remove_keyboard=True))
            w.keyboard_step = None
        if w.return_to:
            target, w.return_to = w.return_to, None
            self.enter(target, force=True)
            return
        w.history.append(HistoryEntry(step=step.id, name=step.name, results=tuple(w.results)))
        self.enter(self.next_of(step))

    def reject(self, step: Question | ConfirmStep, rejection: _Reject) -> None:
        self.accepted = False
        w = self.w
        w.failures += 1
        error = self.book.html(rejection.key, **rejection.params)
        if w.failures < self.engine.max_failures:
            self.present(step, prefix=error)
            return
        optional = isinstance(step, Question) and step.optional
        offer = self.book.html(T.TROUBLE if optional else T.TROUBLE_NO_SKIP)
        rows = [(_button(self.book.plain(T.KEEP_TRYING), w.seq, "ct"),)]
        if optional:
            rows.append((_button(self.book.plain(T.SKIP), w.seq, "sk"),))
        rows.append((_button(self.book.plain(T.CANCEL), w.seq, "cx"),))
        self.emit(OutMessage(f"{error}\n\n{offer}", inline=tuple(rows)))

    # --- per kind: reading an answer ---------------------------------------------------

    def outcome(self, step: Question | ConfirmStep, item: Input) -> _Outcome | None:
        button = None
        if isinstance(item, ButtonInput):
            match = _CALLBACK.match(item.data)
            if match is None:  # pragma: no cover - command() rejected it already
                return _Reject(T.ERROR_STALE)
            number = int(match.group(3)) if match.group(3) else None
            button = (match.group(2), number)
        if isinstance(step, ConfirmStep):
            return self.confirm(step, button)
        if isinstance(step, ChoiceStep):
            return self.choice(step, item, button)
        if button is not None and not self.button_fits(step, button[0]):
            return _Reject(T.ERROR_STALE)
        if isinstance(step, TextStep):
            return self.text(step, item)
        if isinstance(step, NumberStep):
            return self.number(step, item)
        if isinstance(step, RatingStep):
            return self.rating(step, item, button)
        if isinstance(step, YesNoStep):
            return self.yesno(step, item, button)
        if isinstance(step, LocationStep):
            return self.location(step, item)
        if isinstance(step, PhotoStep):
            return self.photo(step, item)
        return self.date(step, item, button)

    @staticmethod
    def button_fits(step: Question, tap: str) -> bool:
        if isinstance(step, RatingStep):
            return tap == "r"
        if isinstance(step, YesNoStep):
            return tap in {"y", "n"}
        if isinstance(step, DateStep):
            return tap == "t" and step.kind == "date"
        return False

    def options_of(self, step: ChoiceStep) -> list[tuple[str, str, str | None]]:
        if step.options is not None:
            return [(o.value, self.local(o.label), None) for o in step.options]
        return [
            (o.value, self.option_text(o.label), self.option_text(o.details) or None)
            for o in self.w.options or []
        ]

    def choice(
        self, step: ChoiceStep, item: Input, button: tuple[str, int | None] | None
    ) -> _Outcome | None:
        options = self.options_of(step)
        w = self.w
        pages = max(1, -(-len(options) // step.page_size))
        index: int | None = None
        if button is not None:
            tap, number = button
            if tap == "o" and number is not None and 0 <= number < len(options):
                index = number
            elif tap in {"pn", "pp"}:
                w.page = min(max(w.page + (1 if tap == "pn" else -1), 0), pages - 1)
                return _Redraw(edit=True)
            elif tap == "ok" and step.multiple:
                return self.choice_done(step, options)
            else:
                return _Reject(T.ERROR_STALE)
        elif isinstance(item, TextInput):
            typed = item.text.strip().casefold()
            matches = [i for i, (_, label, _) in enumerate(options) if label.casefold() == typed]
            if not matches:
                return _Reject(T.ERROR_CHOICE)
            index = matches[0]
        else:
            return _Reject(T.ERROR_CHOICE)
        value, label, _ = options[index]
        if not step.multiple:
            return _Answer(value, label)
        if value in w.draft:
            w.draft.remove(value)
        elif step.max is not None and len(w.draft) >= step.max:
            return _Reject(T.ERROR_SELECT_MAX, {"max": step.max})
        else:
            w.draft.append(value)
        return _Redraw(edit=button is not None)

    def choice_done(self, step: ChoiceStep, options: list[tuple[str, str, str | None]]) -> _Outcome:
        chosen = [(value, label) for value, label, _ in options if value in self.w.draft]
        if not chosen and step.optional:
            return _Answer(None, self.book.plain(T.NOT_ANSWERED))
        least = step.min if step.min is not None else 1
        if len(chosen) < least:
            return _Reject(T.ERROR_SELECT_MIN, {"min": least})
        if step.max is not None and len(chosen) > step.max:
            return _Reject(T.ERROR_SELECT_MAX, {"max": step.max})
        return _Answer([value for value, _ in chosen], ", ".join(label for _, label in chosen))

    def text(self, step: TextStep, item: Input) -> _Outcome:
        if not isinstance(item, TextInput):
            return _Reject(T.ERROR_TEXT_EXPECTED)
        text = item.text.strip()
        if len(text) < step.min_length:
            return _Reject(T.ERROR_TEXT_SHORT, {"min": step.min_length})
        if len(text) > step.max_length:
            return _Reject(T.ERROR_TEXT_LONG, {"max": step.max_length, "length": len(text)})
        return _Answer(text, text)

    def parse_number(self, text: str) -> Decimal | None:
        cleaned = re.sub(r"[\s\u00a0\u202f']", "", text)
        if len(cleaned) > 30:
            return None
        if cleaned.count(",") == 1 and "." not in cleaned:
            whole, fraction = cleaned.split(",")
            thousands = len(fraction) == 3 and self.decimal_symbol() != ","
            cleaned = whole + fraction if thousands else f"{whole}.{fraction}"
        if not _NUMBER.match(cleaned):
            return None
        try:
            return Decimal(cleaned)
        except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
            return None

    def decimal_symbol(self) -> str:
        try:
            return str(get_decimal_symbol(Locale.parse(self.language.replace("-", "_"))))
        except (UnknownLocaleError, ValueError, TypeError):
            return "."

    def number(self, step: NumberStep, item: Input) -> _Outcome:
        number = self.parse_number(item.text) if isinstance(item, TextInput) else None
        if number is None:
            return _Reject(T.ERROR_INTEGER if step.integer else T.ERROR_NUMBER)
        integral = number == number.to_integral_value()
        if step.integer and not integral:
            return _Reject(T.ERROR_INTEGER)
        value: int | float = int(number) if integral else float(number)
        low, high = step.min, step.max
        if (low is not None and value < low) or (high is not None and value > high):
            shown = {"min": self.book.number(low or 0), "max": self.book.number(high or 0)}
            if low is not None and high is not None:
                return _Reject(T.ERROR_NUMBER_RANGE, shown)
            return _Reject(T.ERROR_NUMBER_MIN if low is not None else T.ERROR_NUMBER_MAX, shown)
        return _Answer(value, self.book.number(value))

    def rating(
        self, step: RatingStep, item: Input, button: tuple[str, int | None] | None
    ) -> _Outcome:
        low, high = step.bounds
        value: int | None = None
        if button is not None:
            value = button[1]
        elif isinstance(item, TextInput) and item.text.strip().isdecimal():
            value = int(item.text.strip()) if len(item.text.strip()) < 4 else None
        if value is None or not low <= value <= high:
            return _Reject(T.ERROR_RATING, {"min": low, "max": high})
        return _Answer(value, self.book.plain(T.RATING_LABEL, value=value, max=high))

    def yes_no_labels(self, step: YesNoStep) -> tuple[str, str]:
        yes = self.local(step.yes_label) if step.yes_label else self.book.plain(T.YES_BUTTON)
        no = self.local(step.no_label) if step.no_label else self.book.plain(T.NO_BUTTON)
        return yes, no

    def yesno(
        self, step: YesNoStep, item: Input, button: tuple[str, int | None] | None
    ) -> _Outcome:
        yes, no = self.yes_no_labels(step)
        choice: bool | None = None
        if button is not None:
            choice = button[0] == "y"
        elif isinstance(item, TextInput):
            typed = item.text.strip().casefold().rstrip(".!")
            if typed in self.book.words(T.YES_WORDS) or typed == yes.casefold():
                choice = True
            elif typed in self.book.words(T.NO_WORDS) or typed == no.casefold():
                choice = False
        if choice is None:
            return _Reject(T.ERROR_YESNO, {"yes": yes, "no": no})
        return _Answer(choice, yes if choice else no)

    def location(self, step: LocationStep, item: Input) -> _Outcome:
        share = self.book.plain(T.SHARE_LOCATION)
        if isinstance(item, LocationInput):
            lat, lon = item.latitude, item.longitude
            valid = isinstance(lat, int | float) and isinstance(lon, int | float)
            if valid and -90 <= lat <= 90 and -180 <= lon <= 180:
                value = {"latitude": float(lat), "longitude": float(lon)}
                return _Answer(value, self.location_label(value), T.LOCATION_RECEIVED)
        if isinstance(item, TextInput) and step.allow_address:
            address = " ".join(item.text.split())
            if len(address) < _MIN_ADDRESS:
                return _Reject(T.ERROR_ADDRESS_SHORT)
            address = shorten(address, _MAX_ADDRESS)
            return _Answer({"address": address}, address, T.LOCATION_RECEIVED)
        key = T.ERROR_LOCATION_OR_ADDRESS if step.allow_address else T.ERROR_LOCATION
        return _Reject(key, {"button": share})

    def photo_count(self, count: int) -> str:
        return self.book.plural(count, T.PHOTO_COUNT_ONE, T.PHOTO_COUNT_OTHER)

    def photo(self, step: PhotoStep, item: Input) -> _Outcome:
        w = self.w
        done = self.book.plain(T.DONE)
        if isinstance(item, PhotoInput) and item.file_id and item.file_unique_id:
            if all(p.get("file_unique_id") != item.file_unique_id for p in w.draft):
                w.draft.append({"file_id": item.file_id, "file_unique_id": item.file_unique_id})
            if len(w.draft) >= step.max:
                photos = list(w.draft)
                return _Answer(photos, self.photo_count(len(photos)), T.PHOTOS_RECEIVED)
            notice = self.book.html(T.PHOTO_RECEIVED, count=len(w.draft), max=step.max, button=done)
            return _Redraw(edit=False, notice=notice)
        if isinstance(item, TextInput) and item.text.strip() == done:
            if w.draft:
                photos = list(w.draft)
                return _Answer(photos, self.photo_count(len(photos)), T.PHOTOS_RECEIVED)
            if step.optional:
                return _Answer(None, self.book.plain(T.NOT_ANSWERED), T.PHOTOS_RECEIVED)
            return _Reject(T.ERROR_PHOTO_REQUIRED)
        button = done if w.draft or not step.optional else self.book.plain(T.SKIP)
        return _Reject(T.ERROR_PHOTO, {"button": button})

    def today(self) -> date:
        return self.ctx.now.date()

    def date_bounds(self, step: DateStep) -> tuple[date | None, date | None]:
        today = self.today()
        earliest = today + timedelta(days=step.earliest) if step.earliest is not None else None
        latest = today + timedelta(days=step.latest) if step.latest is not None else None
        return earliest, latest

    def example(self, step: DateStep) -> str:
        key = T.DATETIME_FORMATS if step.kind == "datetime" else T.DATE_FORMATS
        formats = self.book.formats(key)
        moment = self.ctx.now.replace(hour=14, minute=30)
        return moment.strftime(formats[0]) if formats else moment.date().isoformat()

    def date(self, step: DateStep, item: Input, button: tuple[str, int | None] | None) -> _Outcome:
        is_datetime = step.kind == "datetime"
        error = _Reject(
            T.ERROR_DATETIME if is_datetime else T.ERROR_DATE, {"example": self.example(step)}
        )
        day: date | None = None
        moment: datetime | None = None
        if button is not None:
            if button[1] is None or not -1 <= button[1] <= 1:
                return _Reject(T.ERROR_STALE)
            day = self.today() + timedelta(days=button[1])
        elif isinstance(item, TextInput):
            typed = " ".join(item.text.split())
            if not is_datetime:
                words = {T.YESTERDAY: -1, T.TODAY: 0, T.TOMORROW: 1}
                for key, offset in words.items():
                    if typed.casefold() == self.book.plain(key).casefold():
                        day = self.today() + timedelta(days=offset)
            key = T.DATETIME_FORMATS if is_datetime else T.DATE_FORMATS
            for pattern in self.book.formats(key) if day is None and len(typed) < 40 else []:
                try:
                    parsed = datetime.strptime(typed, pattern)
                except ValueError:
                    continue
                if is_datetime:
                    moment = parsed.replace(tzinfo=self.ctx.now.tzinfo)
                    day = moment.date()
                else:
                    day = parsed.date()
                break
        if day is None:
            return error
        earliest, latest = self.date_bounds(step)
        if earliest is not None and day < earliest:
            return _Reject(T.ERROR_DATE_MIN, {"earliest": self.book.date(earliest)})
        if latest is not None and day > latest:
            return _Reject(T.ERROR_DATE_MAX, {"latest": self.book.date(latest)})
        if moment is not None:
            return _Answer(moment.isoformat(), self.book.datetime(moment))
        return _Answer(day.isoformat(), self.book.date(day))

    def confirm(self, step: ConfirmStep, button: tuple[str, int | None] | None) -> _Outcome | None:
        submit = self.local(step.submit_label) if step.submit_label else self.book.plain(T.SUBMIT)
        if button is None:
            return _Reject(T.ERROR_CONFIRM, {"button": submit})
        tap, number = button
        if tap == "sb":
            w = self.w
            w.history.append(HistoryEntry(step=step.id, name="", results=tuple(w.results)))
            self.enter(self.next_of(step))
            return None
        if tap == "e" and number is not None and 0 <= number < len(step.summary):
            target = self.defining_step(step.summary[number].answer)
            if target is not None:
                self.w.return_to = step.id
                self.enter(target, force=True)
                return None
        return _Reject(T.ERROR_STALE)

    def defining_step(self, answer: str) -> str | None:
        for entry in reversed(self.w.history):
            if entry.name == answer:
                return entry.step
        for question in self.flow.questions():
            if question.name == answer:
                return question.id
        return None

    # --- per kind: showing the question ------------------------------------------------

    def show_current(self, *, prefix: str | None = None) -> None:
        step = self.flow.step(self.w.step)
        if not isinstance(step, Question | ConfirmStep):
            self.internal_error()
            return
        if isinstance(step, ChoiceStep) and step.options_from and self.w.options is None:
            self.ask(step)
            return
        self.present(step, prefix=prefix)

    def footer(self, step: Question | ConfirmStep) -> list[tuple[InlineButton, ...]]:
        seq = self.w.seq
        rows: list[tuple[InlineButton, ...]] = []
        if isinstance(step, Question) and step.optional:
            rows.append((_button(self.book.plain(T.SKIP), seq, "sk"),))
        last = [_button(self.book.plain(T.CANCEL), seq, "cx")]
        if self.w.history or self.w.return_to:
            last.insert(0, _button(self.book.plain(T.BACK), seq, "bk"))
        rows.append(tuple(last))
        return rows

    def present(
        self, step: Question | ConfirmStep, *, prefix: str | None = None, edit: bool = False
    ) -> None:
        parts = [prefix] if prefix else []
        parts.append(self.render(step.prompt))
        if isinstance(step, LocationStep | PhotoStep):
            parts.extend(self.hints(step))
            self.emit(
                OutMessage(
                    "\n\n".join(parts), reply_keyboard=self.reply_keyboard(step), one_time=True
                )
            )
            return
        parts.extend(self.hints(step))
        rows = self.buttons(step) + self.footer(step)
        self.emit(OutMessage("\n\n".join(parts), inline=tuple(rows), edit_previous=edit))

    def hints(self, step: Question | ConfirmStep) -> list[str]:
        book = self.book
        if isinstance(step, ChoiceStep):
            return self.choice_hints(step)
        if isinstance(step, RatingStep) and step.low_label and step.high_label:
            low, high = step.bounds
            scale = book.html(
                T.RATING_SCALE,
                low_value=low,
                low=self.local(step.low_label),
                high_value=high,
                high=self.local(step.high_label),
            )
            return [f"<i>{scale}</i>"]
        if isinstance(step, DateStep):
            key = T.DATETIME_HINT if step.kind == "datetime" else T.DATE_HINT
            return [f"<i>{book.html(key, example=self.example(step))}</i>"]
        if isinstance(step, LocationStep):
            key = T.LOCATION_HINT_ADDRESS if step.allow_address else T.LOCATION_HINT_PIN
            return [f"<i>{book.html(key, button=book.plain(T.SHARE_LOCATION))}</i>"]
        if isinstance(step, PhotoStep):
            return [f"<i>{book.html(T.PHOTO_HINT, max=step.max, button=book.plain(T.DONE))}</i>"]
        if isinstance(step, ConfirmStep):
            return [self.summary(step)]
        return []

    def choice_hints(self, step: ChoiceStep) -> list[str]:
        options = self.options_of(step)
        hints: list[str] = []
        start = self.w.page * step.page_size
        page = options[start : start + step.page_size]
        if any(details for _, _, details in page):
            lines = []
            for number, (_, label, details) in enumerate(page, start=start + 1):
                line = f"<b>{number}. {escape(shorten(label, _LABEL_IN_TEXT))}</b>"
                if details:
                    line += "\n" + escape(shorten(details, _DETAILS_IN_TEXT))
                lines.append(line)
            hints.append("\n\n".join(lines))
        if step.multiple:
            hints.append(f"<i>{self.book.html(T.MULTI_HINT, button=self.book.plain(T.DONE))}</i>")
        pages = -(-len(options) // step.page_size)
        if pages > 1:
            hints.append(self.book.html(T.PAGE, page=self.w.page + 1, pages=pages))
        return hints

    def summary(self, step: ConfirmStep) -> str:
        lines = []
        for item in step.summary:
            if item.answer in self.w.labels:
                value = self.w.labels[item.answer]
            else:
                value = self.format_value(self.w.answers.get(item.answer))
            lines.append(
                self.book.html(
                    T.SUMMARY_LINE,
                    label=self.local(item.label),
                    value=shorten(value, _SUMMARY_VALUE),
                )
            )
        return "\n".join(lines)

    def buttons(self, step: Question | ConfirmStep) -> list[tuple[InlineButton, ...]]:
        seq = self.w.seq
        book = self.book
        if isinstance(step, ChoiceStep):
            return self.choice_buttons(step)
        if isinstance(step, RatingStep):
            low, high = step.bounds
            numbers = [_button(str(n), seq, f"r{n}") for n in range(low, high + 1)]
            if len(numbers) <= 7:
                return [tuple(numbers)]
            half = -(-len(numbers) // 2)
            return [tuple(numbers[:half]), tuple(numbers[half:])]
        if isinstance(step, YesNoStep):
            yes, no = self.yes_no_labels(step)
            return [(_button(yes, seq, "y"), _button(no, seq, "n"))]
        if isinstance(step, DateStep) and step.kind == "date":
            earliest, latest = self.date_bounds(step)
            offsets = [(T.YESTERDAY, -1), (T.TODAY, 0), (T.TOMORROW, 1)]
            row = []
            for key, offset in offsets:
                day = self.today() + timedelta(days=offset)
                if (earliest is None or day >= earliest) and (latest is None or day <= latest):
                    row.append(_button(book.plain(key), seq, f"t{offset}"))
            return [tuple(row)] if row else []
        if isinstance(step, ConfirmStep):
            edits = []
            for number, item in enumerate(step.summary):
                if self.defining_step(item.answer) is not None:
                    text = book.plain(T.EDIT, label=self.local(item.label))
                    edits.append(_button(text, seq, f"e{number}"))
            submit = self.local(step.submit_label) if step.submit_label else book.plain(T.SUBMIT)
            return [*_rows(edits, 2), (_button(submit, seq, "sb"),)]
        return []

    def choice_buttons(self, step: ChoiceStep) -> list[tuple[InlineButton, ...]]:
        seq = self.w.seq
        options = self.options_of(step)
        pages = max(1, -(-len(options) // step.page_size))
        self.w.page = min(max(self.w.page, 0), pages - 1)
        start = self.w.page * step.page_size
        mark = self.book.plain(T.SELECTED_MARK)
        buttons = []
        for index, (value, label, _) in enumerate(
            options[start : start + step.page_size], start=start
        ):
            selected = step.multiple and value in self.w.draft
            buttons.append(_button(f"{mark}{label}" if selected else label, seq, f"o{index}"))
        rows = _rows(buttons, step.columns)
        navigation = []
        if self.w.page > 0:
            navigation.append(_button(self.book.plain(T.PREV_PAGE), seq, "pp"))
        if self.w.page < pages - 1:
            navigation.append(_button(self.book.plain(T.NEXT_PAGE), seq, "pn"))
        if navigation:
            rows.append(tuple(navigation))
        if step.multiple:
            rows.append((_button(self.book.plain(T.DONE), seq, "ok"),))
        return rows

    def reply_keyboard(self, step: LocationStep | PhotoStep) -> tuple[tuple[ReplyButton, ...], ...]:
        book = self.book
        rows: list[tuple[ReplyButton, ...]] = []
        if isinstance(step, LocationStep):
            rows.append((ReplyButton(book.plain(T.SHARE_LOCATION), request_location=True),))
            if step.optional:
                rows.append((ReplyButton(book.plain(T.SKIP)),))
        elif self.w.draft:
            rows.append((ReplyButton(book.plain(T.DONE)),))
        elif step.optional:
            rows.append((ReplyButton(book.plain(T.SKIP)),))
        last = [ReplyButton(book.plain(T.CANCEL))]
        if self.w.history or self.w.return_to:
            last.insert(0, ReplyButton(book.plain(T.BACK)))
        rows.append(tuple(last))
        return tuple(rows)
