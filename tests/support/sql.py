"""Watching the SQL a database runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from storage.db import Database


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The statements the database runs inside the block (BEGIN left out)."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        statement = str(args[2])
        if not statement.startswith("BEGIN"):
            seen.append(statement)

    engines = [engine.sync_engine for engine in database.engines]
    for engine in engines:
        event.listen(engine, "after_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "after_cursor_execute", count)
