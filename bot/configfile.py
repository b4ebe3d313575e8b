"""Problems in the configuration files administrators import, and reading them.

A problem reads ``file:line: reason`` when its line is known, ``file: reason``
otherwise (a GeoJSON feature is then named by its number). YAML files are read with
the flow loader's composer, so lines, duplicate keys and syntax errors are reported
the way flows report them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from dialogs.loader import YamlLines, read_yaml_with_lines
from storage.db import UnitOfWork

Kind = Literal["areas", "catalogue", "statuses", "opportunities"]
KINDS: Final[tuple[Kind, ...]] = ("areas", "catalogue", "statuses", "opportunities")
FILENAMES: Final[Mapping[Kind, str]] = {
    "areas": "areas.geojson",
    "catalogue": "catalogue.yaml",
    "statuses": "statuses.yaml",
    "opportunities": "opportunities.yaml",
}
IMPORT_ACTION: Final = "config.import"

MAX_PROBLEMS = 50


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a configuration file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}: {self.message}"


class ConfigFileError(Exception):
    """A configuration file was refused; ``problems`` says why, in file order."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        ordered = sorted(problems, key=lambda problem: problem.line or 0)
        self.problems = ordered[:MAX_PROBLEMS]
        super().__init__("\n".join(str(problem) for problem in self.problems))


PathKey = tuple[str | int, ...]


class YamlDocument:
    """A YAML document as plain data, collecting problems at the lines they are about."""

    def __init__(self, source: str, filename: str) -> None:
        self.filename = filename
        data, lines, problems = read_yaml_with_lines(source, filename)
        self.data: Any = data
        self._lines: YamlLines = lines
        self.problems = [ConfigProblem(p.file, p.line, p.message) for p in problems]

    def line(self, path: PathKey, *, key: bool = False) -> int:
        """The line of the value at ``path`` (of its key with ``key``)."""
        return self._lines.key(path) if key else self._lines.value(path)

    def add(self, path: PathKey, message: str, *, key: bool = False) -> None:
        """Record a problem about the value (or key) at ``path``."""
        self.problems.append(ConfigProblem(self.filename, self.line(path, key=key), message))

    def raise_if_problems(self) -> None:
        """Refuse the file when anything was wrong with it."""
        if self.problems:
            raise ConfigFileError(self.problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSummary:
    """What an import changes (or changed): codes by change, and counts.

    ``rescheduled``, ``cancelled``, ``notified`` and ``promoted`` are about
    volunteer shifts: moved or cancelled ones, volunteers told, waiting volunteers
    given a place.
    """

    kind: Kind
    created: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()
    deactivated: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    rescheduled: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()
    unchanged: int = 0
    reports_moved: int = 0
    granted: int = 0
    revoked: int = 0
    notified: int = 0
    promoted: int = 0
    revision: int | None = None

    @property
    def changed(self) -> bool:
        """Whether the import changes anything at all."""
        return any(count for name, count in self.counts().items() if name != "unchanged")

    def counts(self) -> dict[str, int]:
        """The audit's numbers."""
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "deactivated": len(self.deactivated),
            "deleted": len(self.deleted),
            "rescheduled": len(self.rescheduled),
            "cancelled": len(self.cancelled),
            "unchanged": self.unchanged,
            "reports_moved": self.reports_moved,
            "granted": self.granted,
            "revoked": self.revoked,
            "notified": self.notified,
            "promoted": self.promoted,
        }


CODE_LISTS: Final = ("created", "updated", "deactivated", "deleted", "rescheduled", "cancelled")


def describe(summary: ImportSummary) -> str:
    """The summary in plain English, one item a line (for the command line)."""
    lines = []
    for name in CODE_LISTS:
        codes: tuple[str, ...] = getattr(summary, name)
        if codes:
            lines.append(f"{name}: {', '.join(codes)}")
    for name, count in (
        ("unchanged", summary.unchanged),
        ("reports moved to another area", summary.reports_moved),
        ("manager roles granted", summary.granted),
        ("manager roles revoked", summary.revoked),
        ("volunteers told", summary.notified),
        ("volunteers moved up from a waiting list", summary.promoted),
    ):
        if count:
            lines.append(f"{name}: {count}")
    return "\n".join(lines) or "no changes"


async def audit_import(
    uow: UnitOfWork, summary: ImportSummary, *, actor: str, filename: str, now: datetime
) -> None:
    """Record an applied import: who, which file, what changed."""
    details: dict[str, Any] = {"file": filename[:100], **summary.counts()}
    if summary.revision is not None:
        details["revision"] = summary.revision
    await uow.repos.staff.audit(
        actor=actor, action=IMPORT_ACTION, subject=summary.kind, details=details, now=now
    )
