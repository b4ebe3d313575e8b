"""The ``citizenbot`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import date

from bot.config import SUPPORTED_LANGUAGES, Settings, SettingsError, load_settings

EXIT_CONFIG = 2


# Libraries that log routine work at INFO: aiogram a line per update, APScheduler two
# per tick of the clock (every 30 s), Alembic its plugins at every start.
CHATTY_LOGGERS = ("aiogram.event", "apscheduler", "alembic.runtime.plugins")


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``; the chatty libraries only say more at DEBUG."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    debug = logging.getLevelName(level) <= logging.DEBUG
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if debug else logging.WARNING)


def _command_run(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.app import StartupError, run

    try:
        asyncio.run(run(settings))
    except StartupError as error:
        print(f"citizenbot: {error}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def _command_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from storage.migrate import upgrade_sync

    upgrade_sync(settings.database_url, args.revision)
    print(f"citizenbot: database upgraded to {args.revision}")
    return 0


def _command_inbox_retry(settings: Settings, _args: argparse.Namespace) -> int:
    from storage.db import Database

    async def requeue() -> int:
        database = Database(settings.database_url)
        try:
            async with database.uow() as uow:
                return await uow.repos.inbox.requeue_failed()
        finally:
            await database.dispose()

    count = asyncio.run(requeue())
    print(f"citizenbot: {count} failed update(s) will be handled again at the next start")
    return 0


def _command_export(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.digests.command import export_to_directory

    if args.to < args.start:
        print("citizenbot: --to is before --from", file=sys.stderr)
        return EXIT_CONFIG
    codes = [code for code in (args.services or "").split(",") if code]
    try:
        written = asyncio.run(
            export_to_directory(
                settings,
                first=args.start,
                last=args.to,
                out=Path(args.out),
                service_codes=codes,
                err=sys.stderr,
            )
        )
    except LookupError as error:
        print(f"citizenbot: no such service: {error.args[0]}", file=sys.stderr)
        return EXIT_CONFIG
    for path in written.values():
        print(path)
    return 0


def _command_flows_validate(_settings: Settings, args: argparse.Namespace) -> int:
    from bot.flowcheck import run_validate

    return run_validate(args.paths, out=sys.stdout, err=sys.stderr)


def _command_flows_manage(settings: Settings, args: argparse.Namespace) -> int:
    from bot import flowcheck
    from bot.clock import SystemClock

    url, out, err = settings.database_url, sys.stdout, sys.stderr
    now = SystemClock().now()
    command = args.flows_command
    if command == "list":
        return flowcheck.run_flows_list(url, out=out, err=err)
    if command == "export":
        return flowcheck.run_flows_export(
            url, args.flow, args.revision, args.output, out=out, err=err
        )
    if command == "import":
        return flowcheck.run_flows_import(
            url, args.file, publish=args.publish, out=out, err=err, now=now
        )
    if command == "diff":
        return flowcheck.run_flows_diff(url, args.flow, args.target, args.against, out=out, err=err)
    return flowcheck.run_flows_publish(
        url, args.flow, args.number, rollback=command == "rollback", out=out, err=err, now=now
    )


def _command_config(settings: Settings, args: argparse.Namespace) -> int:
    from bot.configcli import run_config

    return run_config(
        settings,
        action=args.config_command,
        kind=args.kind,
        path=args.file,
        dry_run=getattr(args, "dry_run", False),
        out=sys.stdout,
        err=sys.stderr,
    )


def _command_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.simulate import run_simulation

    return run_simulation(
        settings,
        flow_reference=args.flow,
        answers=args.answers,
        language=args.language,
        database_url=args.database,
        stdin=sys.stdin,
        out=sys.stdout,
        err=sys.stderr,
    )


def _add_flow_management(flows: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``flows list | export | import | publish | rollback | diff`` on the stored revisions."""
    listing = flows.add_parser(
        "list", help="stored flows: published revision, drafts, earlier ones"
    )
    listing.set_defaults(handler=_command_flows_manage)
    export = flows.add_parser("export", help="print or save a stored revision's YAML")
    export.add_argument("flow", metavar="FLOW")
    export.add_argument("--revision", type=int, metavar="N", help="default: the published one")
    export.add_argument("-o", "--output", metavar="FILE", help="write to FILE, not stdout")
    export.set_defaults(handler=_command_flows_manage)
    load = flows.add_parser("import", help="store a flow file as a draft revision")
    load.add_argument("file", metavar="FILE")
    load.add_argument("--publish", action="store_true", help="and publish it")
    load.set_defaults(handler=_command_flows_manage)
    publish = flows.add_parser("publish", help="publish revision N of FLOW")
    publish.add_argument("flow", metavar="FLOW")
    publish.add_argument("number", type=int, metavar="N")
    publish.set_defaults(handler=_command_flows_manage)
    rollback = flows.add_parser(
        "rollback", help="publish an earlier revision (default: the one before the published)"
    )
    rollback.add_argument("flow", metavar="FLOW")
    rollback.add_argument("number", type=int, nargs="?", metavar="N")
    rollback.set_defaults(handler=_command_flows_manage)
    diff = flows.add_parser(
        "diff", help="unified diff from a stored revision to a file or revision"
    )
    diff.add_argument("flow", metavar="FLOW")
    diff.add_argument("target", metavar="FILE-or-N", help="a flow file, or a revision number")
    diff.add_argument("--against", type=int, metavar="N", help="default: the published revision")
    diff.set_defaults(handler=_command_flows_manage)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="citizenbot", description="A Telegram bot for citizens and their public services."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser(
        "run", help="run the bot (the local emulator when BOT_TOKEN is unset)"
    )
    run_parser.set_defaults(handler=_command_run)

    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True
    )
    upgrade = db.add_parser("upgrade", help="apply the migrations")
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=_command_db_upgrade)

    inbox = commands.add_parser("inbox", help="the durable inbox").add_subparsers(
        dest="inbox_command", required=True
    )
    retry = inbox.add_parser("retry-failed", help="handle failed updates again at the next start")
    retry.set_defaults(handler=_command_inbox_retry)

    export = commands.add_parser(
        "export", help="write CSV files of reports and ratings (pseudonymous) for a date range"
    )
    export.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    export.add_argument("--to", type=date.fromisoformat, required=True, help="included")
    export.add_argument("--out", required=True, metavar="DIR", help="the directory to write to")
    export.add_argument("--services", metavar="CODES", help="comma-separated; default: all")
    export.set_defaults(handler=_command_export)

    flows = commands.add_parser("flows", help="dialog flow files").add_subparsers(
        dest="flows_command", required=True
    )
    validate = flows.add_parser(
        "validate", help="check flow files; print each problem as file:line: message"
    )
    validate.add_argument(
        "paths", nargs="+", metavar="PATH", help="a flow file, or a directory of *.yaml flows"
    )
    validate.set_defaults(handler=_command_flows_validate)
    _add_flow_management(flows)

    config = commands.add_parser(
        "config",
        help="areas (GeoJSON), the service catalogue, the report state table, volunteer shifts",
    ).add_subparsers(dest="config_command", required=True)
    for action, help_text in (
        ("export", "write the configuration in force to FILE ('-': stdout)"),
        ("import", "validate FILE, then apply it in one transaction (audited)"),
    ):
        sub = config.add_parser(action, help=help_text)
        sub.add_argument("kind", choices=("areas", "catalogue", "statuses", "opportunities"))
        sub.add_argument("file", metavar="FILE")
        if action == "import":
            sub.add_argument("--dry-run", action="store_true", help="only say what would change")
        sub.set_defaults(handler=_command_config)

    simulate = commands.add_parser("simulate", help="run a flow in the terminal as a citizen would")
    simulate.add_argument(
        "flow", metavar="FLOW", help="a shipped flow id (report, volunteer, rate) or a YAML file"
    )
    simulate.add_argument(
        "--answers", metavar="FILE", help="read the citizen's inputs from FILE, one per line"
    )
    simulate.add_argument("--language", choices=SUPPORTED_LANGUAGES, help="the citizen's language")
    simulate.add_argument(
        "--database",
        metavar="URL",
        help="preview against this database (actions described, not done); "
        "default: a temporary database where actions really run",
    )
    simulate.set_defaults(handler=_command_simulate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``citizenbot`` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"citizenbot: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    handler = args.handler
    return int(handler(settings, args))


if __name__ == "__main__":
    sys.exit(main())
