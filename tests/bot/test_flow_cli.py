"""The flow author's commands: ``citizenbot flows validate`` and ``citizenbot simulate``.

Most tests run the real command in a subprocess, from an empty directory and with
none of the bot's settings in the environment, as an author would on a laptop.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from bot.clock import SystemClock
from bot.config import load_settings
from bot.simulate import run_simulation
from bot.usecases.seed import seed_catalogue
from storage import migrate
from storage.db import Database

SHIPPED_FLOWS = Path(__file__).resolve().parents[2] / "dialogs" / "flows"
SETTING_PREFIXES = ("BOT_", "DATABASE_", "WEBHOOK_", "WEB_", "TELEGRAM_", "ADMIN_", "LOG_")

BROKEN_YAML = """\
id: broken
version: 1
title: {en: Broken, fr: Cassé}
steps:
  - id: ask
    kind: text: oops
    name: answer
"""

TYPOS = """\
id: typos
version: 1
title: {en: Typos, fr: Coquilles}
steps:
  - id: name
    kind: text
    name: name
    colour: blue
    prompt:
      en: "What is your name?"
    next: nowhere
  - id: done
    kind: end
    text: {en: "Bye", fr: "Au revoir"}
"""

REPORT_ANSWERS = """\
# category: the first one (street lighting)
1
/loc 48.8566 2.3522
/photo
# Done
1
The streetlight at the corner has been off for a week.
# not anonymous
2
# the confirmation: send
6
"""

RATE_ANSWERS_FR = """\
1
5
# no more questions
2
C'était très bien.
"""


def run_citizenbot(
    *arguments: str, cwd: Path, input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m bot ARGUMENTS`` with none of the bot's settings, temp files under cwd."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(SETTING_PREFIXES)
    }
    temporary = cwd / "tmp"
    temporary.mkdir(exist_ok=True)
    environment["TMPDIR"] = str(temporary)
    return subprocess.run(
        [sys.executable, "-m", "bot", *arguments],
        cwd=cwd,
        env=environment,
        input=input_text,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def test_broken_flow_files_give_every_problem_as_file_line_message(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(BROKEN_YAML, encoding="utf-8")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "typos.yaml").write_text(TYPOS, encoding="utf-8")
    (tmp_path / "flows" / "notes.txt").write_text("not a flow", encoding="utf-8")

    result = run_citizenbot(
        "flows", "validate", "broken.yaml", "flows", "missing.yaml", cwd=tmp_path
    )

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        "broken.yaml:6: YAML syntax error: mapping values are not allowed here",
        "flows/typos.yaml:8: step 'name': unknown key 'colour'",
        "flows/typos.yaml:10: step 'name': prompt: missing translation for fr",
        "flows/typos.yaml:11: step 'name': next: unknown step 'nowhere'",
        "missing.yaml:0: cannot read: No such file or directory",
    ]
    assert "Traceback" not in result.stderr


def test_the_shipped_flows_are_valid(tmp_path: Path) -> None:
    shipped = sorted(SHIPPED_FLOWS.glob("*.yaml"))

    result = run_citizenbot("flows", "validate", *map(str, shipped), cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"{len(shipped)} flow(s) valid\n"


def test_simulating_a_report_runs_the_action_for_real(tmp_path: Path) -> None:
    (tmp_path / "answers.txt").write_text(REPORT_ANSWERS, encoding="utf-8")

    result = run_citizenbot("simulate", "report", "--answers", "answers.txt", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    transcript = result.stdout
    assert "<b>" not in transcript
    assert "[1] Yes  [2] No" in transcript
    assert "> /loc 48.8566 2.3522" in transcript
    assert "Place: 📍 pin (48.85660, 2.35220)" in transcript
    assert "Photos: 1 photo" in transcript
    assert "Your report number is R-000001." in transcript
    assert transcript.rstrip().endswith("(the flow finished)")
    # The temporary database went away with the simulation.
    assert list((tmp_path / "tmp").iterdir()) == []


def test_simulating_the_rating_in_french(tmp_path: Path) -> None:
    (tmp_path / "answers.txt").write_text(RATE_ANSWERS_FR, encoding="utf-8")

    result = run_citizenbot(
        "simulate", "rate", "--language", "fr", "--answers", "answers.txt", cwd=tmp_path
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Quel service souhaitez-vous évaluer ?" in result.stdout
    assert "> C'était très bien." in result.stdout
    assert "🙏 Merci pour votre avis." in result.stdout


def test_answers_that_end_too_early_stop_with_status_1(tmp_path: Path) -> None:
    (tmp_path / "answers.txt").write_text("# just the category\n2\n", encoding="utf-8")

    result = run_citizenbot("simulate", "report", "--answers", "answers.txt", cwd=tmp_path)

    assert result.returncode == 1
    assert "> 2" in result.stdout
    assert "Where is it?" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == (
        "citizenbot: answers.txt ended but the flow still waits for an answer (at step 'location')"
    )
    assert list((tmp_path / "tmp").iterdir()) == []


async def _prepare(url: str) -> None:
    await migrate.upgrade(url)
    database = Database(url)
    try:
        async with database.uow() as uow:
            await seed_catalogue(uow, now=SystemClock().now(), timezone=ZoneInfo("UTC"))
    finally:
        await database.dispose()


async def _counts(url: str) -> dict[str, int]:
    database = Database(url)
    try:
        async with database.uow() as uow:
            return {
                table: int(await uow.session.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                for table in ("citizens", "dialog_sessions", "reports", "report_photos")
            }
    finally:
        await database.dispose()


def test_preview_on_a_database_describes_actions_and_writes_nothing(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'city.db'}"
    asyncio.run(_prepare(url))
    answers = tmp_path / "answers.txt"
    answers.write_text(REPORT_ANSWERS, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()

    status = run_simulation(
        load_settings(),
        flow_reference="report",
        answers=str(answers),
        language="en",
        database_url=url,
        stdin=io.StringIO(),
        out=out,
        err=err,
    )

    assert status == 0, err.getvalue()
    assert "preview on sqlite+aiosqlite:///" in out.getvalue()
    # The categories come from the database; the report is only described.
    assert "[1] 💡 Street lighting" in out.getvalue()
    assert "Your report number is PREVIEW." in out.getvalue()
    assert asyncio.run(_counts(url)) == {
        "citizens": 0,
        "dialog_sessions": 0,
        "reports": 0,
        "report_photos": 0,
    }


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/loc 91 0", "a latitude is within -90..90"),
        ("/loc north", "usage: /loc LATITUDE LONGITUDE"),
        ("/start", "unknown command /start: type /help"),
    ],
)
def test_inputs_that_send_nothing_get_a_note(line: str, expected: str) -> None:
    from bot.simulate import parse_input

    note = parse_input(line, [], photo_number=1)

    assert isinstance(note, str) and note.startswith(expected)
