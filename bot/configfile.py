"""Problems in the configuration files administrators import, and reading them.

A problem reads ``file:line: reason`` when its line is known, ``file: reason``
otherwise (a GeoJSON feature is then named by its number). YAML files are read with
the flow loader's composer, so lines, duplicate keys and syntax errors are reported
the way flows report them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dialogs.loader import YamlLines, read_yaml_with_lines

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
