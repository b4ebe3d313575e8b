"""``citizenbot flows list | export | import | publish | rollback | diff``, in-process.

Each test gets a migrated SQLite file holding the shipped flows as the bot stores
them at start-up, and runs ``bot.cli.main`` against it as an operator would.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.clock import SystemClock
from bot.conversation.catalog import FlowCatalog
from bot.flowcheck import flow_catalog
from storage.db import Database
from storage.migrate import upgrade_sync
from storage.records import FlowRevisionRecord
from storage.repositories.staff import AuditRecord

SHIPPED_RATE = (Path(__file__).resolve().parents[2] / "dialogs/flows/rate.yaml").read_text()
OLD_QUESTION = "Overall, how satisfied are you"
NEW_QUESTION = "Overall, how HAPPY are you"
SETTING_PREFIXES = ("BOT_", "DATABASE_", "WEBHOOK_", "WEB_", "TELEGRAM_", "ADMIN_", "LOG_")

BROKEN = """\
id: rate
version: 1
title: {en: Rate, fr: Évaluer}
steps:
  - id: ask
    kind: teleport
    name: answer
"""


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file with the shipped flows, named by DATABASE_URL."""
    for name in list(os.environ):
        if name.startswith(SETTING_PREFIXES):
            monkeypatch.delenv(name)
    url = f"sqlite+aiosqlite:///{tmp_path / 'flows.db'}"
    upgrade_sync(url)

    async def store_shipped_flows() -> None:
        database = Database(url)
        try:
            async with database.uow() as uow:
                await flow_catalog().sync_builtin(uow, SystemClock().now())
        finally:
            await database.dispose()

    asyncio.run(store_shipped_flows())
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    return url


def stored(url: str) -> tuple[list[FlowRevisionRecord], list[AuditRecord]]:
    """The rate flow's revisions (newest first) and the audit log (oldest first)."""

    async def read() -> tuple[list[FlowRevisionRecord], list[AuditRecord]]:
        database = Database(url)
        try:
            async with database.uow() as uow:
                revisions = await uow.repos.flows.revisions("rate")
                audit = await uow.repos.staff.audit_entries(limit=100)
        finally:
            await database.dispose()
        return revisions, list(reversed(audit))

    return asyncio.run(read())


def published(url: str) -> int:
    revisions, _ = stored(url)
    (number,) = [r.number for r in revisions if r.published]
    return number


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["flows", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_export_import_diff_publish_and_roll_back(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "list")
    assert status == 0
    assert "rate\tpublished 1 (system, " in out and "drafts: -" in out

    assert run(capsys, "export", "rate")[:2] == (0, SHIPPED_RATE)
    status, _, err = run(capsys, "export", "rate", "-o", "exported.yaml")
    assert status == 0 and "wrote rate@1 to exported.yaml" in err
    assert (tmp_path / "exported.yaml").read_text() == SHIPPED_RATE

    edited = tmp_path / "exported.yaml"
    edited.write_text(SHIPPED_RATE.replace(OLD_QUESTION, NEW_QUESTION))
    assert run(capsys, "import", str(edited))[:2] == (0, "stored draft rate@2\n")
    assert published(database_url) == 1
    assert "drafts: 2" in run(capsys, "list")[1]

    status, out, _ = run(capsys, "diff", "rate", "2")
    assert status == 0 and out.startswith("--- rate@1\n+++ rate@2\n")
    assert f'-      en: "<b>{OLD_QUESTION}' in out and f'+      en: "<b>{NEW_QUESTION}' in out
    file_diff = run(capsys, "diff", "rate", str(edited))[1]
    assert file_diff == out.replace("+++ rate@2", f"+++ {edited}")
    reverse = run(capsys, "diff", "rate", "--against", "2", "1")[1]
    assert f'+      en: "<b>{OLD_QUESTION}' in reverse

    status, out, _ = run(capsys, "publish", "rate", "2")
    assert status == 0 and out.startswith("published rate@2 (before: rate@1)")
    assert published(database_url) == 2
    assert run(capsys, "export", "rate")[1] == edited.read_text()
    assert run(capsys, "export", "rate", "--revision", "1")[1] == SHIPPED_RATE

    status, out, _ = run(capsys, "rollback", "rate")
    assert status == 0 and out.startswith("rolled back to rate@1 (before: rate@2)")
    assert published(database_url) == 1
    status, _, err = run(capsys, "rollback", "rate", "1")
    assert status == 1 and "not older than the published revision 1" in err

    third = tmp_path / "third.yaml"
    third.write_text(SHIPPED_RATE.replace(OLD_QUESTION, "Overall, how GLAD are you"))
    status, out, _ = run(capsys, "import", str(third), "--publish")
    assert status == 0 and "stored draft rate@3" in out and "published rate@3" in out
    status, out, _ = run(capsys, "rollback", "rate", "1")
    assert status == 0 and out.startswith("rolled back to rate@1 (before: rate@3)")

    revisions, audit = stored(database_url)
    assert [(r.number, r.published) for r in revisions] == [(3, False), (2, False), (1, True)]
    actor = f"cli:{getpass.getuser()}"
    assert {r.author for r in revisions[:2]} == {actor}
    assert [(e.actor, e.action, e.subject, e.details["revision"]) for e in audit] == [
        (actor, "flow.draft", "rate", 2),
        (actor, "flow.publish", "rate", 2),
        (actor, "flow.rollback", "rate", 1),
        (actor, "flow.draft", "rate", 3),
        (actor, "flow.publish", "rate", 3),
        (actor, "flow.rollback", "rate", 1),
    ]


@pytest.mark.parametrize("publish", [[], ["--publish"]])
def test_a_broken_file_exits_non_zero_and_leaves_the_published_flow_untouched(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], publish: list[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    status, out, err = run(capsys, "import", str(broken), *publish)
    assert status == 1 and out == ""
    assert err.startswith(f"{broken}:6: ") and "teleport" in err
    assert "the published flow is unchanged" in err
    revisions, audit = stored(database_url)
    assert [(r.number, r.published, r.source) for r in revisions] == [(1, True, SHIPPED_RATE)]
    assert audit == []

    status, _, err = run(capsys, "import", str(tmp_path / "missing.yaml"))
    assert status == 1 and "missing.yaml:0: cannot read" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["publish", "rate", "9"], "flow 'rate' has no revision 9"),
        (["export", "nosuch"], "no flow 'nosuch' is stored"),
        (["rollback", "rate"], "no revision before the published one"),
        (["diff", "rate", "--against", "7", "1"], "flow 'rate' has no revision 7"),
    ],
)
def test_a_wrong_flow_or_revision_is_named_and_changes_nothing(
    database_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status, out, err = run(capsys, *argv)
    assert (status, out) == (1, "")
    assert message in err
    assert published(database_url) == 1
    assert stored(database_url)[1] == []


def test_a_new_release_replaces_only_flows_no_administrator_edited(
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def release(question: str) -> None:
        shipped = {"rate.yaml": SHIPPED_RATE.replace(OLD_QUESTION, question)}
        monkeypatch.setattr(FlowCatalog, "builtin_sources", staticmethod(lambda: shipped))

        async def start_bot() -> None:
            database = Database(database_url)
            try:
                async with database.uow() as uow:
                    await flow_catalog().sync_builtin(uow, SystemClock().now())
            finally:
                await database.dispose()

        asyncio.run(start_bot())

    release("Overall, how PLEASED are you")
    assert published(database_url) == 2  # nobody edited it: the release's text wins

    edited = tmp_path / "edited.yaml"
    edited.write_text(SHIPPED_RATE.replace(OLD_QUESTION, "Overall, how GLAD are you"))
    assert run(capsys, "import", str(edited), "--publish")[0] == 0
    assert run(capsys, "rollback", "rate", "2")[0] == 0
    release("Overall, how CONTENT are you")
    revisions, _ = stored(database_url)
    # The administrator chose the shipped revision 2; a deploy does not overrule them.
    assert [(r.number, r.author, r.published) for r in revisions][-2:] == [
        (2, "system", True),
        (1, "system", False),
    ]
    assert len(revisions) == 3
