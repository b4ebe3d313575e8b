"""The engine stays pure: no bot, storage, Telegram or database code, no clock of its own."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import dialogs

PACKAGE = Path(dialogs.__file__).parent
CLOCKS = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "monotonic"),
}
FORBIDDEN = ("bot", "storage", "aiogram", "sqlalchemy", "aiohttp", "asyncpg", "aiosqlite")


def test_importing_dialogs_loads_no_forbidden_module() -> None:
    code = (
        "import sys, dialogs, dialogs.engine, dialogs.loader;"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"


def test_no_clock_and_no_stray_io_in_the_sources() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                clock = (node.value.id, node.attr)
                assert clock not in CLOCKS, f"{path.name}:{node.lineno} reads the clock"
            if isinstance(node, ast.Name) and node.id in {"open", "print", "eval", "exec"}:
                raise AssertionError(f"{path.name}:{node.lineno} uses {node.id}")
