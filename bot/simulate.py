"""``citizenbot simulate``: run a flow in the terminal as a citizen would.

The flow runs on the bot's own engine, call runner and call implementations against
a real database, so what an author sees is what a citizen will get. By default that
database is a throw-away SQLite file, migrated and seeded, where actions really run;
with ``--database`` it is an existing database in preview mode, where queries read
real data and actions are only described (and every transaction is rolled back).

Nothing here imports aiogram: the CLI must start in a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from html.parser import HTMLParser
from typing import TextIO
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from bot.clock import SystemClock
from bot.config import Settings
from bot.conversation.calls import IMPLEMENTATIONS, CallContext, CallFailedError, CallRunner
from bot.conversation.catalog import FlowCatalog
from bot.conversation.service import MAX_CALLS_PER_INPUT, Conversations
from bot.flowcheck import flow_catalog, read_flow_source
from bot.i18n import Translator
from bot.usecases.seed import seed_catalogue
from dialogs import (
    ButtonInput,
    CommandInput,
    Context,
    Engine,
    Flow,
    FlowError,
    Input,
    LocationInput,
    OutMessage,
    PhotoInput,
    Problem,
    Result,
    SessionState,
    Status,
    TextInput,
)
from storage.db import Database, UnitOfWork
from storage.records import CitizenRecord

EXIT_FINISHED = 0
EXIT_STOPPED = 1
EXIT_CANNOT_START = 2
EXIT_INTERRUPTED = 130  # what shells report for a process ended by Ctrl-C

# Far above real Telegram user ids, so a simulated citizen is easy to recognise.
SIMULATED_TELEGRAM_ID = 9_000_000_000_001
SIMULATED_FIRST_NAME = "Alex"

HELP = """\
Type a number to press that button, or an answer as text.
  /loc LAT LON   share a location (e.g. /loc 48.8566 2.3522)
  /photo         send a photo
  /text WORDS    send WORDS as text, even a number
  /back /skip /cancel
  /help          this help
Ctrl-D or Ctrl-C ends the simulation."""


class SimulationError(Exception):
    """The simulation could not start; the message is for the author."""


class SimulationStoppedError(SimulationError):
    """The simulation stopped before the flow ended; the message says why."""


class _InputEndedError(Exception):
    """No more citizen input while the flow waits for an answer."""


class _RollbackError(Exception):
    """Leaves a unit of work so that it rolls back (preview never writes)."""


# --- rendering ------------------------------------------------------------------------


class _PlainText(HTMLParser):
    """Telegram HTML to terminal text: tags dropped, entities decoded, link targets kept."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._links: list[tuple[str | None, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._links.append((dict(attrs).get("href"), len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._links:
            href, start = self._links.pop()
            label = "".join(self.parts[start:])
            # An author reading the transcript needs to see where a link points.
            if href and href != label:
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(html: str) -> str:
    """The text of a Telegram HTML message as a citizen reads it."""
    parser = _PlainText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


@dataclass(frozen=True, slots=True)
class Button:
    """A button shown to the citizen, and what pressing it sends (None: nothing to send)."""

    label: str
    sends: Input | None


def buttons_of(message: OutMessage) -> list[list[Button]]:
    """A message's buttons by row: inline ones send their data, reply ones their text."""
    if message.inline:
        return [[Button(b.text, ButtonInput(b.data)) for b in row] for row in message.inline]
    return [
        # A location-request button shares the phone's position; the terminal has none.
        [Button(b.text, None if b.request_location else TextInput(b.text)) for b in row]
        for row in message.reply_keyboard
    ]


def format_message(message: OutMessage) -> str:
    """A message as terminal text, its buttons numbered from 1."""
    lines = ["(edited)"] if message.edit_previous else []
    lines.append(plain_text(message.text))
    number = 1
    for row in buttons_of(message):
        cells = []
        for button in row:
            cells.append(f"[{number}] {button.label}")
            number += 1
        lines.append("  ".join(cells))
    return "\n".join(lines)


# --- citizen input --------------------------------------------------------------------


def parse_input(line: str, buttons: Sequence[Button], photo_number: int) -> Input | str:
    """What a typed line sends to the flow, or a note for the author when it sends nothing."""
    text = line.strip()
    if text.isdigit() and 1 <= int(text) <= len(buttons):
        button = buttons[int(text) - 1]
        if button.sends is None:
            return "this button shares the phone's location: type /loc LAT LON instead"
        return button.sends
    if not text.startswith("/"):
        return TextInput(text)
    command, _, rest = text[1:].partition(" ")
    rest = rest.strip()
    if command in ("cancel", "back", "skip"):
        return CommandInput(command)
    if command == "photo":
        return PhotoInput(
            file_id=f"simulated-photo-{photo_number}",
            file_unique_id=f"simulated-{photo_number}",
        )
    if command == "text":
        return TextInput(rest)
    if command == "loc":
        return _location(rest)
    if command == "help":
        return HELP
    # The bot never hands other commands to a conversation either.
    return f"unknown command /{command}: type /help"


def _location(arguments: str) -> Input | str:
    usage = "usage: /loc LATITUDE LONGITUDE, e.g. /loc 48.8566 2.3522"
    parts = arguments.replace(",", " ").split()
    if len(parts) != 2:
        return usage
    try:
        latitude, longitude = float(parts[0]), float(parts[1])
    except ValueError:
        return usage
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return "a latitude is within -90..90 and a longitude within -180..180"
    return LocationInput(latitude, longitude)


class InputSource:
    """Citizen input, one line at a time; echoes the lines a terminal did not show."""

    def __init__(
        self, read: Callable[[], str | None], *, out: TextIO, interactive: bool, name: str
    ) -> None:
        self._read = read
        self._out = out
        self.interactive = interactive
        self.name = name

    @classmethod
    def from_file(cls, path: str, *, out: TextIO) -> InputSource:
        """Answers from a file: one per line, ``#`` lines and blank lines ignored."""
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as error:
            raise SimulationError(f"cannot read {path}: {error.strerror or error}") from None
        except UnicodeDecodeError:
            raise SimulationError(f"cannot read {path}: not UTF-8 text") from None
        lines = iter(
            [
                line
                for line in text.splitlines()
                if line.strip() and not line.strip().startswith("#")
            ]
        )
        return cls(lambda: next(lines, None), out=out, interactive=False, name=path)

    @classmethod
    def from_terminal(cls, stdin: TextIO, *, out: TextIO) -> InputSource:
        """Answers typed by a person, or piped in."""
        if not stdin.isatty():
            return cls(lambda: stdin.readline() or None, out=out, interactive=False, name="stdin")

        def typed() -> str | None:
            try:
                return input("> ")
            except EOFError:
                print(file=out)
                return None

        return cls(typed, out=out, interactive=True, name="the input")

    def next_line(self) -> str:
        """The next line (raises _InputEndedError at the end)."""
        line = self._read()
        if line is None:
            raise _InputEndedError
        line = line.rstrip("\r\n")
        if not self.interactive:
            print(f"> {line}", file=self._out)
        return line

    def remaining(self) -> int:
        """How many lines are left unread (none for a person at a terminal)."""
        if self.interactive:
            return 0
        count = 0
        while self._read() is not None:
            count += 1
        return count


# --- the database ---------------------------------------------------------------------


def _quiet_alembic() -> None:
    # Alembic logs its plugins as it is imported and every step as it migrates; in an
    # author's transcript that is noise. Hence also the late imports of storage.migrate.
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextlib.asynccontextmanager
async def temporary_database(settings: Settings) -> AsyncIterator[Database]:
    """A migrated, seeded SQLite database that is deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="citizenbot-simulate-") as folder:
        url = f"sqlite+aiosqlite:///{os.path.join(folder, 'simulate.db')}"
        _quiet_alembic()
        from storage import migrate

        await migrate.upgrade(url)
        database = Database(url)
        try:
            async with database.uow() as uow:
                await seed_catalogue(
                    uow, now=SystemClock().now(), timezone=ZoneInfo(settings.timezone)
                )
            yield database
        finally:
            await database.dispose()


@contextlib.asynccontextmanager
async def existing_database(url: str) -> AsyncIterator[Database]:
    """A database that is already there and up to date (never created nor migrated here)."""
    _quiet_alembic()
    from storage import migrate

    try:
        database = Database(url)
    except ValueError as error:
        raise SimulationError(f"invalid --database: {error}") from None
    try:
        path = database.url.database or ""
        if database.is_sqlite and not await asyncio.to_thread(os.path.exists, path):
            # Connecting would create an empty file: a typo must not leave one behind.
            raise SimulationError(f"no SQLite database at {database.url.database}")
        try:
            current = await migrate.current_revision(database)
        except (OSError, SQLAlchemyError) as error:
            reason = error.strerror if isinstance(error, OSError) else None
            raise SimulationError(f"cannot reach the database: {reason or error}") from None
        if current != migrate.head_revision():
            raise SimulationError(
                "the database schema is not up to date: run `citizenbot db upgrade`"
            )
        yield database
    finally:
        await database.dispose()


def preview_citizen(language: str) -> CitizenRecord:
    """A citizen that exists only in memory: preview must not add one to a real database."""
    return CitizenRecord(
        id=0,
        telegram_id=None,
        pseudonym="PREVIEW",
        language=language,
        language_chosen=True,
        first_name=SIMULATED_FIRST_NAME,
        username=None,
        timezone=None,
        consented_at=None,
        created_at=SystemClock().now(),
        stopped_at=None,
        unreachable_at=None,
    )


# --- the conversation -----------------------------------------------------------------


class Simulation:
    """One citizen's conversation with one flow, printed as a transcript."""

    def __init__(
        self,
        *,
        flow: Flow,
        conversations: Conversations,
        database: Database,
        citizen: CitizenRecord,
        preview: bool,
        out: TextIO,
    ) -> None:
        self.flow = flow
        self.conversations = conversations
        self.database = database
        self.citizen = citizen
        self.preview = preview
        self.out = out
        self.buttons: list[Button] = []
        self.reply_keyboard = False
        self.photos = 0
        self.state: SessionState | None = None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[UnitOfWork]:
        """One unit of work per citizen input, as in the bot; rolled back in preview."""
        if not self.preview:
            async with self.database.uow() as uow:
                yield uow
            return
        with contextlib.suppress(_RollbackError):
            async with self.database.uow() as uow:
                yield uow
                raise _RollbackError

    def run(self, source: InputSource, runner: asyncio.Runner) -> Status:
        """Start the flow and feed it input until it finishes or is cancelled.

        Turns run on ``runner``'s loop; the next line is read between them, with no
        loop running, so a blocking read stalls nothing and Ctrl-C stops at once.
        """
        engine = self.conversations.engine
        status = runner.run(self.turn(partial(engine.start, self.flow)))
        while status is Status.WAITING and self.state is not None:
            try:
                item = self.read(source)
            except _InputEndedError:
                raise SimulationStoppedError(
                    f"{source.name} ended but the flow still waits for an answer"
                    f" (at step '{self.state.step}')"
                ) from None
            status = runner.run(self.turn(partial(engine.handle, self.flow, self.state, item)))
        return status

    def read(self, source: InputSource) -> Input:
        """The next input that sends something; notes for the author are printed."""
        while True:
            parsed = parse_input(source.next_line(), self.buttons, self.photos + 1)
            if isinstance(parsed, str):
                print(parsed, file=self.out)
                continue
            if isinstance(parsed, PhotoInput):
                self.photos += 1
            return parsed

    async def turn(self, step: Callable[[Context], Result]) -> Status:
        """One input's worth of engine work and calls, in one transaction (as the bot does)."""
        async with self.transaction() as uow:
            context = self.conversations.context(self.citizen, preview=self.preview)
            result = step(context)
            self.show(result.messages)
            calls = 0
            while result.status is Status.CALLING and result.call is not None:
                calls += 1
                if calls > MAX_CALLS_PER_INPUT:
                    raise SimulationStoppedError(
                        f"the flow made more than {MAX_CALLS_PER_INPUT} calls for one input"
                    )
                call_context = CallContext(
                    uow=uow,
                    citizen=self.citizen,
                    language=context.language,
                    now=context.now,
                    translator=self.conversations.translator,
                    preview=context.preview,
                )
                try:
                    output = await self.conversations.calls.run(result.call, call_context)
                except (CallFailedError, ValidationError) as error:
                    raise SimulationStoppedError(
                        f"the call {result.call.name!r} failed: {error}"
                    ) from None
                for chat_id, text in call_context.notices:
                    print(
                        f"\n(to another citizen, chat {chat_id})\n{plain_text(text)}", file=self.out
                    )
                result = self.conversations.engine.resume(self.flow, result.state, output, context)
                self.show(result.messages)
        # The bot keeps the state as JSON between inputs; so does the simulation, so a
        # value that would not survive storage fails here as it would there.
        self.state = SessionState.from_json(json.loads(json.dumps(result.state.to_json())))
        return result.status

    def show(self, messages: Sequence[OutMessage]) -> None:
        """Print the bot's messages; the buttons of the latest keyboard become pressable."""
        for message in messages:
            rows = buttons_of(message)
            if rows:
                self.buttons = [button for row in rows for button in row]
                self.reply_keyboard = bool(message.reply_keyboard)
            elif message.remove_keyboard and self.reply_keyboard:
                self.buttons, self.reply_keyboard = [], False
            print(f"\n{format_message(message)}", file=self.out)


# --- the command ----------------------------------------------------------------------


def load_simulated_flow(reference: str, catalog: FlowCatalog) -> Flow:
    """A shipped flow by id, or a flow file by path (FlowError if it is invalid)."""
    is_path = os.sep in reference or "/" in reference or reference.endswith((".yaml", ".yml"))
    if is_path or os.path.isfile(reference):
        source = read_flow_source(reference)
        if isinstance(source, Problem):
            raise FlowError([source])
        return catalog.parse(source, filename=reference)
    shipped = {}
    for name, text in catalog.builtin_sources().items():
        flow = catalog.parse(text, filename=f"dialogs/flows/{name}")
        shipped[flow.id] = flow
    if reference not in shipped:
        choices = ", ".join(sorted(shipped))
        raise SimulationError(
            f"no shipped flow {reference!r}: choose {choices} or give the path of a YAML file"
        )
    return shipped[reference]


def build_conversations(settings: Settings, catalog: FlowCatalog) -> Conversations:
    """The bot's conversation pieces, wired as ``build_runtime`` wires them."""
    return Conversations(
        engine=Engine(),
        catalog=catalog,
        calls=CallRunner(catalog.registry, IMPLEMENTATIONS),
        clock=SystemClock(),
        translator=Translator.load(settings.default_language),
        timezone=ZoneInfo(settings.timezone),
    )


async def open_simulation(
    settings: Settings,
    resources: contextlib.AsyncExitStack,
    *,
    flow: Flow,
    conversations: Conversations,
    language: str,
    database_url: str | None,
    out: TextIO,
) -> Simulation:
    """The database, the citizen and the conversation, ready for the first turn."""
    preview = database_url is not None
    opened = existing_database(database_url) if database_url else temporary_database(settings)
    database = await resources.enter_async_context(opened)
    if preview:
        citizen = preview_citizen(language)
        where = database.url.render_as_string(hide_password=True)
        mode = f"preview on {where}: actions are described, not done"
    else:
        async with database.uow() as uow:
            citizen, _ = await uow.repos.citizens.ensure(
                telegram_id=SIMULATED_TELEGRAM_ID,
                language=language,
                first_name=SIMULATED_FIRST_NAME,
                username=None,
                now=conversations.clock.now(),
            )
        mode = "a temporary database: actions really run, then it is deleted"
    print(
        f"Simulating flow '{flow.id}' ({flow.title(language)}) in {language}, on {mode}.",
        file=out,
    )
    return Simulation(
        flow=flow,
        conversations=conversations,
        database=database,
        citizen=citizen,
        preview=preview,
        out=out,
    )


def simulate(
    settings: Settings,
    *,
    flow: Flow,
    conversations: Conversations,
    source: InputSource,
    language: str,
    database_url: str | None,
    out: TextIO,
) -> Status:
    """Run one flow to its end; raises SimulationError when it cannot."""
    with asyncio.Runner() as runner:
        resources = contextlib.AsyncExitStack()
        try:
            simulation = runner.run(
                open_simulation(
                    settings,
                    resources,
                    flow=flow,
                    conversations=conversations,
                    language=language,
                    database_url=database_url,
                    out=out,
                )
            )
            if source.interactive:
                print("Type a number to press a button; /help lists the commands.", file=out)
            return simulation.run(source, runner)
        finally:
            runner.run(resources.aclose())


def run_simulation(
    settings: Settings,
    *,
    flow_reference: str,
    answers: str | None,
    language: str | None,
    database_url: str | None,
    stdin: TextIO,
    out: TextIO,
    err: TextIO,
) -> int:
    """The ``simulate`` command: the transcript on ``out``, problems on ``err``."""
    try:
        source = (
            InputSource.from_file(answers, out=out)
            if answers is not None
            else InputSource.from_terminal(stdin, out=out)
        )
        catalog = flow_catalog()
        flow = load_simulated_flow(flow_reference, catalog)
        status = simulate(
            settings,
            flow=flow,
            conversations=build_conversations(settings, catalog),
            source=source,
            language=language or settings.default_language,
            database_url=database_url,
            out=out,
        )
    except FlowError as error:
        for problem in error.problems:
            print(problem, file=err)
        return EXIT_CANNOT_START
    except SimulationError as error:
        out.flush()
        print(f"citizenbot: {error}", file=err)
        return EXIT_STOPPED if isinstance(error, SimulationStoppedError) else EXIT_CANNOT_START
    except KeyboardInterrupt:
        print(file=out)
        return EXIT_INTERRUPTED
    ending = "finished" if status is Status.FINISHED else "was cancelled"
    print(f"\n(the flow {ending})", file=out)
    left = source.remaining()
    if left:
        print(f"citizenbot: {left} line(s) of {source.name} were not used", file=err)
    return EXIT_FINISHED
