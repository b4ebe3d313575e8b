"""``citizenbot config export|import areas|catalogue|statuses FILE``.

The same use cases as the bot's ``/config``; an import is audited as done by the
operator (``cli:<user>``) and prints what it changed, or every problem as
``file:line: reason`` (exit status 1, nothing changed).
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import TextIO

from bot.clock import SystemClock
from bot.config import Settings
from bot.configfile import ConfigFileError, ImportSummary, Kind, describe
from bot.i18n import Translator
from bot.usecases import configuration as usecase
from storage.db import Database

EXIT_INVALID = 1


def operator() -> str:
    """How the command line's user appears in the audit log."""
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def run_config(
    settings: Settings,
    *,
    action: str,
    kind: Kind,
    path: str,
    dry_run: bool,
    out: TextIO,
    err: TextIO,
) -> int:
    """Export to ``path`` ('-' for stdout) or import from it; returns the exit status."""
    translator = Translator.load(settings.default_language)
    languages = translator.languages

    async def export() -> str:
        database = Database(settings.database_url)
        try:
            async with database.uow() as uow:
                return await usecase.export_file(
                    uow,
                    kind,
                    translator=translator,
                    languages=languages,
                    timezone=settings.timezone,
                    now=SystemClock().now(),
                )
        finally:
            await database.dispose()

    async def load(source: str, filename: str) -> ImportSummary:
        database = Database(settings.database_url)
        try:
            async with database.uow() as uow:
                return await usecase.import_file(
                    uow,
                    kind,
                    source,
                    filename=filename,
                    languages=languages,
                    translator=translator,
                    actor=operator(),
                    now=SystemClock().now(),
                    apply=not dry_run,
                    timezone=settings.timezone,
                )
        finally:
            await database.dispose()

    if action == "export":
        text = asyncio.run(export())
        if path == "-":
            out.write(text)
        else:
            Path(path).write_text(text, encoding="utf-8")
            print(f"citizenbot: {kind} written to {path}", file=out)
        return 0
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"{path}: cannot read: {error}", file=err)
        return EXIT_INVALID
    try:
        summary = asyncio.run(load(source, path))
    except ConfigFileError as error:
        for problem in error.problems:
            print(problem, file=err)
        return EXIT_INVALID
    verb = "would change" if dry_run else "imported"
    print(f"citizenbot: {kind} {verb}:\n{describe(summary)}", file=out)
    return 0
