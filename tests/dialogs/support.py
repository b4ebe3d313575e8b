"""Helpers for the dialog tests: inline flows and a fake host that answers calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from dialogs import (
    ButtonInput,
    Call,
    CallRegistry,
    Context,
    Engine,
    Flow,
    Input,
    OutMessage,
    Result,
    Status,
    TextInput,
    builtin_registry,
    load_flow,
)
from dialogs.texts import SystemText, TextBook

NOW = datetime(2025, 5, 14, 9, 30, tzinfo=UTC)

CallAnswer = Mapping[str, Any] | Callable[[Call], Mapping[str, Any]]

DEFAULT_ANSWERS: dict[str, CallAnswer] = {
    "categories": {
        "options": [
            {"value": "roads", "label": {"en": "Roads", "fr": "Voirie"}},
            {"value": "lighting", "label": {"en": "Street lights", "fr": "Éclairage"}},
            {"value": "waste", "label": {"en": "Litter", "fr": "Déchets"}},
        ]
    },
    "services": {
        "options": [
            {"value": "library", "label": {"en": "Library", "fr": "Bibliothèque"}},
            {"value": "permits", "label": {"en": "Permits", "fr": "Permis"}},
        ]
    },
    "nearby_open_reports": {"count": 0},
    "volunteer_profile": {"exists": False},
    "opportunities": {
        "options": [
            {
                "value": f"opp{i}",
                "label": f"Park clean-up #{i}",
                "details": {"en": "Saturday 10:00, Central Park", "fr": "Samedi 10 h, parc"},
            }
            for i in range(7)
        ]
    },
    "create_report": {"reference": "R-0042", "target_days": 5},
    "follow_report": {"supporters": 4},
    "save_volunteer_profile": {},
    "volunteer_signup": {
        "status": "confirmed",
        "position": 0,
        "title": "Park clean-up",
        "starts_at": "2025-05-17T10:00:00+00:00",
    },
    "record_rating": {"ok": True},
    "report_summary": {
        "found": True,
        "reference": "R-000042",
        "category": "Street lights",
        "location": "12 Rue Haute",
        "created": "14 May 2025",
        "status": "open",
    },
    "record_fix_answer": {"status": "open", "reopened": True},
    "add_report_details": {},
    "shift_summary": {
        "found": True,
        "title": "Park clean-up",
        "when": "Sat 17 May, 10:00",
        "place": "Central Park",
        "hours": "3",
    },
    "record_attendance": {"ok": True},
}


def make_flow(
    body: str,
    *,
    languages: Sequence[str] = ("en",),
    registry: CallRegistry | None = None,
    header: str | None = None,
) -> Flow:
    """A flow from inline YAML steps (indented as a list under ``steps:``)."""
    top = header or "id: demo\nversion: 1\ntitle: {en: Demo, fr: Démo}\n"
    return load_flow(
        top + "steps:\n" + body,
        filename="demo.yaml",
        languages=languages,
        registry=registry or builtin_registry(),
    )


def context(language: str = "en", **kwargs: Any) -> Context:
    """A context at a fixed moment."""
    return Context(language=language, now=kwargs.pop("now", NOW), **kwargs)


class Host:
    """A fake host: sends inputs, answers calls from a table, remembers everything."""

    def __init__(
        self,
        flow: Flow,
        *,
        language: str = "en",
        answers: Mapping[str, CallAnswer] | None = None,
        engine: Engine | None = None,
        ctx: Context | None = None,
    ) -> None:
        self.flow = flow
        self.engine = engine or Engine()
        self.ctx = ctx or context(language)
        self.answers = {**DEFAULT_ANSWERS, **(answers or {})}
        self.calls: list[Call] = []
        self.messages: list[OutMessage] = []
        self.result: Result | None = None

    @property
    def state(self) -> Any:
        assert self.result is not None
        return self.result.state

    @property
    def status(self) -> Status:
        assert self.result is not None
        return self.result.status

    def _settle(self, result: Result) -> Result:
        self.messages.extend(result.messages)
        while result.status is Status.CALLING:
            assert result.call is not None
            call = result.call
            spec = self.flow.registry.get(call.name)
            assert spec is not None
            spec.params.model_validate(call.params)
            self.calls.append(call)
            answer = self.answers[call.name]
            data = answer(call) if callable(answer) else answer
            result = self.engine.resume(self.flow, result.state, data, self.ctx)
            self.messages.extend(result.messages)
        self.result = result
        return result

    def start(self, prefill: Mapping[str, Any] | None = None) -> Result:
        return self._settle(self.engine.start(self.flow, self.ctx, prefill=prefill))

    def send(self, item: Input | str) -> Result:
        if isinstance(item, str):
            item = TextInput(item)
        return self._settle(self.engine.handle(self.flow, self.state, item, self.ctx))

    def last(self) -> OutMessage:
        assert self.result is not None
        assert self.result.messages
        return self.result.messages[-1]

    def text(self) -> str:
        """The texts of the last result's messages, joined."""
        assert self.result is not None
        return "\n".join(message.text for message in self.result.messages)

    def buttons(self) -> list[tuple[str, str]]:
        """(text, data) of the inline buttons of the last result."""
        assert self.result is not None
        return [
            (button.text, button.data)
            for message in self.result.messages
            for row in message.inline
            for button in row
        ]

    def press(self, tap: str) -> Result:
        """Press the inline button whose callback data ends with ``:<tap>`` (any language)."""
        found = [data for _, data in self.buttons() if data.endswith(f":{tap}")]
        assert found, f"no button {tap!r} in {self.buttons()}"
        return self.send(ButtonInput(found[0]))

    def label(self, key: SystemText) -> str:
        """A system text as the citizen sees it on a button."""
        return TextBook(self.flow.system_texts, self.ctx.language, self.flow.languages).plain(key)

    def tap(self, label: str) -> Result:
        """Press the inline button whose text is (or, failing that, contains) ``label``."""
        buttons = self.buttons()
        exact = [data for text, data in buttons if text == label]
        partial = [data for text, data in buttons if label in text]
        found = exact or partial
        assert found, f"no button {label!r} in {buttons}"
        return self.send(ButtonInput(found[0]))
