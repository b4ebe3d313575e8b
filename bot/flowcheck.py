"""``citizenbot flows validate``: check flow files with the loader the bot uses.

Every problem is one ``file:line: message`` line, the way compilers report, so an
editor or a CI log can jump to it. Files are named as the author gave them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import TextIO

from bot.config import SUPPORTED_LANGUAGES
from bot.conversation.catalog import FlowCatalog
from dialogs import FlowError, Problem, builtin_registry

FLOW_SUFFIX = ".yaml"


def flow_catalog() -> FlowCatalog:
    """A catalog that parses flows exactly as the running bot does."""
    return FlowCatalog(builtin_registry(), SUPPORTED_LANGUAGES)


def read_flow_source(path: str) -> str | Problem:
    """The text of a flow file, or the problem that kept it from being read."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as error:
        return Problem(path, 0, f"cannot read: {error.strerror or error}")
    except UnicodeDecodeError as error:
        return Problem(path, 0, f"cannot read: not UTF-8 text ({error.reason})")


def expand_paths(paths: Iterable[str]) -> tuple[list[str], list[Problem]]:
    """The flow files named by ``paths``: files as given, directories by their *.yaml files."""
    files: list[str] = []
    problems: list[Problem] = []
    for path in paths:
        if not os.path.isdir(path):
            files.append(path)
            continue
        try:
            names = sorted(os.listdir(path))
        except OSError as error:
            problems.append(Problem(path, 0, f"cannot read: {error.strerror or error}"))
            continue
        found = [
            os.path.join(path, name)
            for name in names
            if name.endswith(FLOW_SUFFIX) and os.path.isfile(os.path.join(path, name))
        ]
        if not found:
            # Naming an empty folder is almost always a wrong path, not a pass.
            problems.append(Problem(path, 0, f"no {FLOW_SUFFIX} files in this directory"))
        files.extend(found)
    return files, problems


def validate_files(paths: Sequence[str], catalog: FlowCatalog) -> tuple[int, list[Problem]]:
    """Load every flow file; returns how many loaded cleanly and every problem found."""
    files, problems = expand_paths(paths)
    valid = 0
    for path in files:
        source = read_flow_source(path)
        if isinstance(source, Problem):
            problems.append(source)
            continue
        try:
            catalog.parse(source, filename=path)
        except FlowError as error:
            problems.extend(error.problems)
            continue
        valid += 1
    return valid, problems


def run_validate(paths: Sequence[str], *, out: TextIO, err: TextIO) -> int:
    """The ``flows validate`` command: problems on ``out``, exit status 1 if any."""
    valid, problems = validate_files(paths, flow_catalog())
    for problem in problems:
        print(problem, file=out)
    if problems:
        files = len({problem.file for problem in problems})
        print(f"citizenbot: {len(problems)} problem(s) in {files} file(s)", file=err)
        return 1
    print(f"{valid} flow(s) valid", file=out)
    return 0
