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


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiogram logs one line per update at INFO; keep the operator's log readable.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


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
    _configure_logging(settings.log_level)
    handler = args.handler
    return int(handler(settings, args))


if __name__ == "__main__":
    sys.exit(main())
