"""``citizenbot flows``: check flow files, and manage the revisions stored in the database.

Every problem is one ``file:line: message`` line, the way compilers report, so an
editor or a CI log can jump to it. Files are named as the author gave them.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.config import SUPPORTED_LANGUAGES
from bot.conversation.catalog import PUBLISHED_CACHE_SECONDS, FlowCatalog
from bot.usecases import flows
from dialogs import FlowError, Problem, builtin_registry
from storage.db import Database, UnitOfWork

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


# --- managing stored flows: ``citizenbot flows list | export | import | ...`` -----------
# The work is bot.usecases.flows, shared with the administrators' chat commands; this
# is the terminal around it. Nothing here imports aiogram: the CLI starts fast.

EXIT_PROBLEMS = 1
EXIT_CANNOT = 2


def cli_actor() -> str:
    """How the command line appears in revisions and the audit log: ``cli:<os user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}"[:64]


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


async def _with_database(
    database_url: str, work: Callable[[UnitOfWork], Awaitable[int]], err: TextIO
) -> int:
    """Run ``work`` in one transaction; management errors roll it back and exit 1."""
    database = Database(database_url)
    try:
        async with database.uow() as uow:
            return await work(uow)
    except FlowError as error:
        for problem in error.problems:
            print(problem, file=err)
        print("citizenbot: nothing was stored; the published flow is unchanged", file=err)
        return EXIT_PROBLEMS
    except flows.FlowManagementError as error:
        print(f"citizenbot: {error}", file=err)
        return EXIT_PROBLEMS
    except SQLAlchemyError as error:
        print(f"citizenbot: cannot use the database: {error.__class__.__name__}", file=err)
        return EXIT_CANNOT
    finally:
        await database.dispose()


def _published_note(publication: flows.Publication) -> str:
    name = flows.revision_name(publication.flow_id, publication.revision.number)
    if not publication.changed:
        return f"{name} is already the published revision"
    before = publication.previous
    was = flows.revision_name(before.flow_id, before.number) if before else "none"
    verb = "rolled back to" if publication.action == flows.ROLLED_BACK else "published"
    return (
        f"{verb} {name} (before: {was}); running bots use it within "
        f"{PUBLISHED_CACHE_SECONDS:g} s, conversations already running keep their revision"
    )


def run_flows_list(database_url: str, *, out: TextIO, err: TextIO) -> int:
    """``flows list``: each flow's published revision, drafts and earlier revisions."""

    async def work(uow: UnitOfWork) -> int:
        histories = await flows.flow_histories(uow)
        if not histories:
            print(
                "no flow is stored yet (the bot stores the shipped ones when it starts)", file=out
            )
        for history in histories:
            published = history.published
            shown = (
                f"published {published.number} ({published.author}, {_when(published.created_at)})"
                if published
                else "not published"
            )
            drafts = ",".join(str(r.number) for r in history.drafts) or "-"
            earlier = ",".join(str(r.number) for r in history.earlier) or "-"
            print(f"{history.flow_id}\t{shown}\tdrafts: {drafts}\tearlier: {earlier}", file=out)
        return 0

    return asyncio.run(_with_database(database_url, work, err))


def run_flows_export(
    database_url: str,
    flow_id: str,
    number: int | None,
    output: str | None,
    *,
    out: TextIO,
    err: TextIO,
) -> int:
    """``flows export``: a revision's YAML (the published one by default)."""
    found: list[tuple[str, str]] = []

    async def work(uow: UnitOfWork) -> int:
        revision, source = await flows.revision_source(uow, flow_id, number)
        found.append((flows.revision_name(flow_id, revision.number), source))
        return 0

    status = asyncio.run(_with_database(database_url, work, err))
    if status or not found:
        return status
    name, source = found[0]
    if output is None:
        out.write(source)
        return 0
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(source)
    except OSError as error:
        print(f"citizenbot: cannot write {output}: {error.strerror or error}", file=err)
        return EXIT_CANNOT
    print(f"citizenbot: wrote {name} to {output}", file=err)
    return 0


def run_flows_import(
    database_url: str, path: str, *, publish: bool, out: TextIO, err: TextIO, now: datetime
) -> int:
    """``flows import``: store a file as a draft (and publish it); a broken file stores nothing."""
    source = read_flow_source(path)
    if isinstance(source, Problem):
        print(source, file=err)
        return EXIT_PROBLEMS
    catalog = flow_catalog()

    async def work(uow: UnitOfWork) -> int:
        actor = cli_actor()
        draft = await flows.save_draft(uow, catalog, source, filename=path, author=actor, now=now)
        name = flows.revision_name(draft.revision.flow_id, draft.revision.number)
        print(f"stored draft {name}" if draft.created else f"same as stored {name}", file=out)
        if publish:
            publication = await flows.publish(
                uow, catalog, draft.revision.flow_id, draft.revision.number, actor=actor, now=now
            )
            print(_published_note(publication), file=out)
        return 0

    return asyncio.run(_with_database(database_url, work, err))


def run_flows_publish(
    database_url: str,
    flow_id: str,
    number: int | None,
    *,
    rollback: bool,
    out: TextIO,
    err: TextIO,
    now: datetime,
) -> int:
    """``flows publish FLOW N`` and ``flows rollback FLOW [N]``."""
    catalog = flow_catalog()

    async def work(uow: UnitOfWork) -> int:
        actor = cli_actor()
        if rollback:
            publication = await flows.rollback(uow, catalog, flow_id, number, actor=actor, now=now)
        else:
            assert number is not None
            publication = await flows.publish(uow, catalog, flow_id, number, actor=actor, now=now)
        print(_published_note(publication), file=out)
        return 0

    return asyncio.run(_with_database(database_url, work, err))


def run_flows_diff(
    database_url: str,
    flow_id: str,
    target: str,
    against: int | None,
    *,
    out: TextIO,
    err: TextIO,
) -> int:
    """``flows diff``: from a stored revision (the published one) to a file or a revision."""
    file_source: str | None = None
    if os.path.exists(target) or not target.isdigit():
        read = read_flow_source(target)
        if isinstance(read, Problem):
            print(read, file=err)
            return EXIT_PROBLEMS
        file_source = read

    async def work(uow: UnitOfWork) -> int:
        if file_source is not None:
            new_source, new_name = file_source, target
        else:
            revision, new_source = await flows.revision_source(uow, flow_id, int(target))
            new_name = flows.revision_name(flow_id, revision.number)
        out.write(
            await flows.diff_against(uow, flow_id, new_source, new_name=new_name, against=against)
        )
        return 0

    return asyncio.run(_with_database(database_url, work, err))
