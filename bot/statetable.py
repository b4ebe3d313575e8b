"""The report state table: which status may follow which, what managers are offered,
when a note is asked, and each status's label in every language.

The nine status codes and their kinds are fixed (digests and SQL count on them:
``open`` ones wait for the service, ``fixed`` is done, ``closed`` ones are over);
administrators edit the rest as a YAML document stored in ``config_documents``
(name ``statuses``). Without one, the built-in table applies: any status may follow
any other, every one is offered, no note is asked, labels come from the catalogue.
The parsed table is cached per process for a few seconds (other instances import
too) and dropped at once when this process imports a new one.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from bot.config import SUPPORTED_LANGUAGES
from bot.configfile import ConfigFileError, YamlDocument
from bot.i18n import Translator
from storage.db import UnitOfWork
from storage.repositories.reports import OPEN_STATUSES

FIXED: Final = "fixed"
CLOSING_STATUSES = ("closed", "duplicate", "not_responsible")
REPORT_STATUSES = (*OPEN_STATUSES, FIXED, *CLOSING_STATUSES)
OPEN, CLOSED = "open", "closed"
STATUS_KINDS: Mapping[str, str] = {
    **dict.fromkeys(OPEN_STATUSES, OPEN),
    FIXED: FIXED,
    **dict.fromkeys(CLOSING_STATUSES, CLOSED),
}
DOCUMENT = "statuses"
RULE_KEYS = ("kind", "labels", "offered", "note", "to")
MAX_LABEL = 40
CACHE_SECONDS = 5.0

logger = logging.getLogger(__name__)


class TransitionNotAllowedError(ValueError):
    """The state table does not allow this status change."""

    def __init__(self, from_status: str, to_status: str) -> None:
        super().__init__(f"the state table does not allow {from_status} -> {to_status}")
        self.from_status = from_status
        self.to_status = to_status


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusRule:
    """One status: its labels, whether managers are offered it, whether it asks a note,
    and the statuses that may follow it."""

    code: str
    labels: Mapping[str, str] = field(default_factory=dict)
    offered: bool = True
    note: bool = False
    to: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """open, fixed or closed."""
        return STATUS_KINDS[self.code]


@dataclass(frozen=True, slots=True)
class StateTable:
    """The nine statuses' rules, in display order."""

    rules: Mapping[str, StatusRule]

    def allows(self, from_status: str, to_status: str) -> bool:
        """Whether a manager may move a report from one status to the other."""
        rule = self.rules.get(from_status)
        return rule is not None and to_status in rule.to

    def offered_from(self, status: str) -> list[str]:
        """The statuses a card in ``status`` shows buttons for, in table order."""
        rule = self.rules.get(status)
        allowed = set(rule.to) if rule else set()
        return [code for code, target in self.rules.items() if code in allowed and target.offered]

    def asks_note(self, status: str) -> bool:
        """Whether moving a report to ``status`` asks the manager for a note."""
        rule = self.rules.get(status)
        return rule is not None and rule.note

    def label(self, translator: Translator, language: str, status: str) -> str:
        """The status in the reader's words: the table's label, else the catalogue's,
        else the code."""
        rule = self.rules.get(status)
        if rule is not None and rule.labels.get(language):
            return rule.labels[language]
        key = f"status.{status}"
        return translator.text(language, key) if translator.has(key) else status


DEFAULT_TABLE = StateTable(
    {
        code: StatusRule(code=code, to=tuple(other for other in REPORT_STATUSES if other != code))
        for code in REPORT_STATUSES
    }
)


def parse_state_table(source: str, *, filename: str, languages: Sequence[str]) -> StateTable:
    """Validate a state table document; raises ConfigFileError with every problem."""
    document = YamlDocument(source, filename)
    data = document.data
    document.raise_if_problems()
    if not isinstance(data, dict) or not isinstance(data.get(DOCUMENT), dict):
        document.add((), "a state table is a mapping with one key, 'statuses', of status rules")
        document.raise_if_problems()
    for key in data:
        if key != DOCUMENT:
            document.add((key,), f"unknown key '{key}'", key=True)
    raw_rules: dict[str, Any] = data[DOCUMENT]
    for code in REPORT_STATUSES:
        if code not in raw_rules:
            document.add((DOCUMENT,), f"status '{code}' is missing (all nine are needed)")
    rules = {}
    for code, raw in raw_rules.items():
        path = (DOCUMENT, code)
        if code not in STATUS_KINDS:
            known = ", ".join(REPORT_STATUSES)
            document.add(path, f"unknown status '{code}' (the statuses are: {known})", key=True)
            continue
        rule = _parse_rule(document, path, code, raw, languages)
        if rule is not None:
            rules[code] = rule
    document.raise_if_problems()
    return StateTable({code: rules[code] for code in REPORT_STATUSES})


def _parse_rule(
    document: YamlDocument, path: tuple[str, str], code: str, raw: Any, languages: Sequence[str]
) -> StatusRule | None:
    if not isinstance(raw, dict):
        document.add(path, f"status '{code}' must be a mapping of {', '.join(RULE_KEYS)}")
        return None
    for key in raw:
        if key not in RULE_KEYS:
            document.add((*path, key), f"unknown key '{key}' in status '{code}'", key=True)
    kind = raw.get("kind", STATUS_KINDS[code])
    if kind != STATUS_KINDS[code]:
        document.add(
            (*path, "kind"),
            f"status '{code}' is of kind '{STATUS_KINDS[code]}'; kinds cannot change",
        )
    flags = {}
    for name, default in (("offered", True), ("note", False)):
        value = raw.get(name, default)
        if not isinstance(value, bool):
            document.add((*path, name), f"'{name}' must be true or false")
        flags[name] = bool(value)
    labels = raw.get("labels", {})
    if not isinstance(labels, dict):
        document.add((*path, "labels"), "'labels' must map a language to a label")
        labels = {}
    for language, text in labels.items():
        where = (*path, "labels", language)
        if language not in languages:
            document.add(where, f"unknown language '{language}'", key=True)
        elif not isinstance(text, str) or not text.strip() or len(text) > MAX_LABEL:
            document.add(where, f"a label is text of 1 to {MAX_LABEL} characters")
    targets = raw.get("to", [])
    if not isinstance(targets, list):
        document.add((*path, "to"), "'to' must be a list of statuses")
        targets = []
    seen: set[str] = set()
    for index, target in enumerate(targets):
        where = (*path, "to", index)
        if target not in STATUS_KINDS:
            document.add(where, f"'to' names an unknown status {target!r}")
        elif target == code:
            document.add(where, f"status '{code}' cannot follow itself")
        elif target in seen:
            document.add(where, f"'{target}' is listed twice")
        seen.add(str(target))
    return StatusRule(
        code=code,
        labels={str(k): str(v).strip() for k, v in labels.items() if isinstance(v, str)},
        offered=flags["offered"],
        note=flags["note"],
        to=tuple(target for target in REPORT_STATUSES if target in seen),
    )


def render_state_table(
    table: StateTable, *, translator: Translator, languages: Sequence[str]
) -> str:
    """The table as a YAML document, every label filled in (the catalogue's by default)."""
    statuses: dict[str, Any] = {}
    for code, rule in table.rules.items():
        statuses[code] = {
            "kind": rule.kind,
            "labels": {language: table.label(translator, language, code) for language in languages},
            "offered": rule.offered,
            "note": rule.note,
            "to": list(rule.to),
        }
    header = (
        "# The report state table. The nine statuses and their kinds (open, fixed,\n"
        "# closed) are fixed; edit the labels, whether managers are offered a status\n"
        "# on a report card, whether moving a report to it asks a note for the\n"
        "# reporter, and which statuses may follow it ('to').\n"
    )
    body = yaml.safe_dump(
        {DOCUMENT: statuses}, sort_keys=False, allow_unicode=True, default_flow_style=None
    )
    return header + body


# Per engine (each Database has its own), so bots on other databases, in tests,
# never see each other's table.
_cache: weakref.WeakKeyDictionary[Any, tuple[float, StateTable]] = weakref.WeakKeyDictionary()


async def current_table(uow: UnitOfWork) -> StateTable:
    """The state table in force (cached a few seconds per process)."""
    engine = uow.session.get_bind()
    cached = _cache.get(engine)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    stored = await uow.repos.config.document(DOCUMENT)
    table = DEFAULT_TABLE
    if stored is not None:
        try:
            table = parse_state_table(
                stored.source,
                filename=f"{DOCUMENT}@{stored.revision}",
                languages=SUPPORTED_LANGUAGES,
            )
        except ConfigFileError as error:
            # Imports are validated; this is a stored document edited by hand.
            logger.error("stored state table refused, the built-in one applies: %s", error)
    _cache[engine] = (time.monotonic(), table)
    return table


def invalidate_state_tables() -> None:
    """Forget every cached table (after an import, this process sees it at once)."""
    _cache.clear()
