"""The composition root: builds the bot from settings and runs it until a signal.

Nothing here is a module-level singleton; tests build the same pieces with other
settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramUnauthorizedError
from aiohttp import web

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.conversation.calls import IMPLEMENTATIONS, CallRunner
from bot.conversation.catalog import FlowCatalog
from bot.conversation.service import Conversations
from bot.digests.runner import DigestRunner
from bot.followups.runner import FollowUpRunner
from bot.handlers import include_routers
from bot.i18n import Translator
from bot.outbox.sender import OutboxSender
from bot.runtime.context import Services, default_worker_id
from bot.runtime.inbox import Inbox
from bot.runtime.middlewares import CitizenMiddleware, UnitOfWorkMiddleware
from bot.runtime.polling import poll_updates
from bot.runtime.tuning import JsonSession, LeanDispatcher
from bot.runtime.web import build_web_app
from bot.staffmenu import StaffMenus
from bot.usecases.broadcasts import BroadcastMonitor
from bot.usecases.housekeeping import Housekeeper
from bot.usecases.janitor import SessionJanitor
from bot.usecases.photos import PhotoFetcher
from bot.usecases.seed import seed_catalogue
from dialogs import Engine, FlowError, builtin_registry
from storage import migrate
from storage.db import Database
from storage.repositories.staff import MANAGER

if TYPE_CHECKING:
    from bot.emulator import Persona

log = logging.getLogger(__name__)

PLAYGROUND_ADMIN_ID = 300001  # the playground's administrator when ADMIN_IDS is empty
PLAYGROUND_MANAGER_ID = 200001

EMULATOR_TOKEN = "1000001:local-emulator-token"  # noqa: S105 - the local emulator accepts any token
ALLOWED_UPDATES = ("message", "edited_message", "callback_query", "my_chat_member")


class StartupError(Exception):
    """A problem that stops start-up, phrased for the operator."""


@dataclass(slots=True)
class Runtime:
    """Everything a running bot holds; built by :func:`build_runtime`."""

    services: Services
    bot: Bot
    dispatcher: Dispatcher
    inbox: Inbox


def build_dispatcher(services: Services) -> Dispatcher:
    """A dispatcher with our middlewares and routers (aiogram's FSM is off: state is ours).

    It walks the routers as aiogram's does, without aiogram's per-router glue (see
    :class:`bot.runtime.tuning.LeanDispatcher`).
    """
    dispatcher = LeanDispatcher(disable_fsm=True)
    dispatcher["services"] = services
    dispatcher.update.outer_middleware(UnitOfWorkMiddleware(services))
    dispatcher.update.outer_middleware(CitizenMiddleware(services))
    include_routers(dispatcher)
    return dispatcher


def build_runtime(
    settings: Settings,
    *,
    api_base: str,
    token: str,
    clock: Clock | None = None,
    database: Database | None = None,
) -> Runtime:
    """Wire the bot, dispatcher, services and inbox for the given settings."""
    clock = clock or SystemClock()
    translator = Translator.load(settings.default_language)
    registry = builtin_registry()
    conversations = Conversations(
        engine=Engine(),
        catalog=FlowCatalog(registry, translator.languages),
        calls=CallRunner(registry, IMPLEMENTATIONS),
        clock=clock,
        translator=translator,
        timezone=ZoneInfo(settings.timezone),
    )
    services = Services(
        settings=settings,
        database=database or Database(settings.database_url),
        translator=translator,
        clock=clock,
        conversations=conversations,
        worker_id=settings.worker_id or default_worker_id(),
    )
    bot = Bot(
        token=token,
        session=JsonSession(api=TelegramAPIServer.from_base(api_base)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )
    dispatcher = build_dispatcher(services)
    return Runtime(
        services=services, bot=bot, dispatcher=dispatcher, inbox=Inbox(services, bot, dispatcher)
    )


async def prepare_database(settings: Settings) -> None:
    """Upgrade an embedded SQLite database; insist that PostgreSQL was upgraded first."""
    database = Database(settings.database_url)
    try:
        if database.is_sqlite:
            await migrate.upgrade(settings.database_url)
            return
        try:
            current = await migrate.current_revision(database)
        except OSError as error:
            raise StartupError(
                f"cannot reach the database at DATABASE_URL: {error.strerror or error}"
            ) from None
        if current != migrate.head_revision():
            raise StartupError("the database schema is not up to date: run `citizenbot db upgrade`")
    finally:
        await database.dispose()


CONTENT_LOCK_KEY = 0x0C17B07C0  # any constant of ours, distinct from the outbox's


async def prepare_content(runtime: Runtime) -> None:
    """Store the shipped flows as revisions and seed an empty catalogue."""
    services = runtime.services
    now = services.clock.now()
    try:
        async with services.database.uow() as uow:
            # Instances starting together on a new database take turns: the second
            # finds the first's rows instead of inserting them again.
            await uow.serialize(CONTENT_LOCK_KEY)
            await services.conversations.catalog.sync_builtin(uow, now)
            await seed_catalogue(uow, now=now, timezone=ZoneInfo(services.settings.timezone))
    except FlowError as error:
        raise StartupError(f"a shipped flow is invalid:\n{error}") from None


async def _warm_up(runtime: Runtime) -> None:
    """Build now what the first replies would build: the main menu in each language
    (its keyboard models are built on first use, 15 ms; see bot.runtime.lean_aiogram)."""
    services = runtime.services
    async with services.database.uow() as uow:
        for language in services.translator.languages:
            await services.main_menu(uow, language)


async def announce_commands(runtime: Runtime) -> None:
    """The command menu in every language, and each staff member's own (see
    bot.commandmenu)."""
    services = runtime.services
    default = services.translator.default_language
    async with services.database.uow() as uow:
        menus = {
            language: await services.command_menu(uow, language)
            for language in services.translator.languages
        }
    for language, commands in menus.items():
        await runtime.bot.set_my_commands(commands, language_code=language)
    await runtime.bot.set_my_commands(menus[default])
    # Staff menus go through the outbox (its sender starts next).
    async with services.database.uow() as uow:
        queued = await StaffMenus(services).sync(uow, now=services.clock.now())
    if queued:
        log.info("command menus queued for %d staff member(s)", queued)


async def _connect(runtime: Runtime, stopping: asyncio.Event) -> None:
    """Check the token, retrying while the Bot API is unreachable."""
    delay = 1.0
    while True:
        try:
            me = await runtime.bot.get_me()
        except TelegramUnauthorizedError:
            raise StartupError("the Bot API rejected BOT_TOKEN (401 Unauthorized)") from None
        except Exception as error:
            log.warning("Bot API unreachable (%s); retrying in %.0fs", type(error).__name__, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), delay)
            if stopping.is_set():
                raise StartupError("stopped before the Bot API answered") from None
            delay = min(delay * 2, 30.0)
            continue
        log.info("connected as @%s", me.username)
        return


def playground_personas(settings: Settings) -> list[Persona]:
    """Who a person can be in the playground: citizens in each language, staff."""
    from bot.emulator import Persona

    administrator = settings.admin_ids[0] if settings.admin_ids else PLAYGROUND_ADMIN_ID
    return [
        Persona(user_id=100001, first_name="Alex", language_code="en", label="Citizen (English)"),
        Persona(
            user_id=100002, first_name="Camille", language_code="fr", label="Citoyenne (français)"
        ),
        Persona(
            user_id=PLAYGROUND_MANAGER_ID,
            first_name="Morgan",
            language_code="en",
            label="Service manager",
        ),
        Persona(user_id=administrator, first_name="Sam", language_code="en", label="Administrator"),
    ]


async def _staff_the_playground(runtime: Runtime) -> None:
    """The playground's staff personas are staff from the start: its administrator is
    in ADMIN_IDS, its "Service manager" manages every service (whoever tries it sees
    the card of any report they file)."""
    services = runtime.services
    now = services.clock.now()
    staff = {PLAYGROUND_MANAGER_ID, *services.settings.admin_ids}
    async with services.database.uow() as uow:
        for persona in playground_personas(services.settings):
            if persona.user_id not in staff:
                continue
            person, _ = await uow.repos.citizens.ensure(
                telegram_id=persona.user_id,
                language=persona.language_code,
                first_name=persona.first_name,
                username=None,
                now=now,
            )
            if persona.user_id == PLAYGROUND_MANAGER_ID:
                for service in await uow.repos.catalog.services():
                    await uow.repos.staff.grant(
                        person.id, MANAGER, service_id=service.id, by="playground", now=now
                    )


def _bind(host: str, port: int) -> socket.socket:
    """Bind the listening socket early: its real port is needed to wire the bot."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        raise StartupError(
            f"cannot listen on WEB_HOST:WEB_PORT {host}:{port}: {error.strerror or error}"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _http_address(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def run(settings: Settings, *, clock: Clock | None = None) -> None:
    """Run the bot until SIGINT or SIGTERM."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)

    await prepare_database(settings)
    sock = _bind(settings.web_host, settings.web_port)
    address = _http_address(sock)
    emulator = None
    if settings.emulated:
        from bot.emulator import Emulator

        if not settings.admin_ids:  # the playground's administrator persona is one
            settings = settings.model_copy(update={"admin_ids": (PLAYGROUND_ADMIN_ID,)})
        emulator = Emulator(personas=playground_personas(settings), personas_started=True)
        api_base, token = f"http://{address}", EMULATOR_TOKEN
    else:
        assert settings.bot_token is not None
        api_base, token = settings.telegram_api_base, settings.bot_token.get_secret_value()
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None

    runtime = build_runtime(settings, api_base=api_base, token=token, clock=clock)
    # Updates that arrive before the stored ones are queued wait for them.
    runtime.inbox.hold()
    app = build_web_app(runtime.services, runtime.inbox, webhook_secret=secret)
    if emulator is not None:
        emulator.setup(app)
    runner = web.AppRunner(app, access_log=None)
    polling: asyncio.Task[None] | None = None
    background: list[asyncio.Task[None]] = []
    try:
        await prepare_content(runtime)
        if emulator is not None:
            await _staff_the_playground(runtime)
        await _warm_up(runtime)
        # What start-up built lives as long as the process: full collections need not
        # walk it (one took ~150 ms, holding the event loop, with a backlog of updates).
        gc.collect()
        gc.freeze()
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if emulator is not None:
            print(
                f"citizenbot: playground at http://{address}/ "
                "(chat with the bot as a citizen, a manager or an administrator)",
                flush=True,
            )
        await _connect(runtime, stopping)
        await announce_commands(runtime)
        if settings.webhook_url and secret:
            await runtime.bot.set_webhook(
                settings.webhook_url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)
            )
            mode = f"webhook at {settings.webhook_url}"
        else:
            await runtime.bot.delete_webhook(drop_pending_updates=False)
            polling = asyncio.create_task(
                poll_updates(
                    runtime.bot,
                    runtime.inbox,
                    poll_timeout=settings.polling_timeout,
                    allowed_updates=ALLOWED_UPDATES,
                    stopping=stopping,
                ),
                name="polling",
            )
            mode = "long polling"
        worker_id = runtime.services.worker_id
        for name, worker in (
            ("photos", PhotoFetcher(runtime.services, runtime.bot)),
            ("sessions", SessionJanitor(runtime.services)),
            (
                "followups",
                FollowUpRunner(
                    runtime.services,
                    worker_id=worker_id,
                    lease=timedelta(seconds=settings.followup_lease_seconds),
                ),
            ),
            ("digests", DigestRunner(runtime.services, worker_id=worker_id)),
            (
                "outbox",
                OutboxSender(
                    runtime.services,
                    runtime.bot,
                    worker_id=worker_id,
                    lease=timedelta(seconds=settings.outbox_lease_seconds),
                ),
            ),
            ("broadcasts", BroadcastMonitor(runtime.services, runtime.bot)),
            (
                "housekeeping",
                Housekeeper(runtime.services, retention=timedelta(days=settings.retention_days)),
            ),
        ):
            background.append(asyncio.create_task(worker.run(stopping), name=name))
        await runtime.inbox.recover()
        print(f"citizenbot: running ({mode}); health at http://{address}/healthz", flush=True)
        await stopping.wait()
    finally:
        for task in [polling, *background]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await runtime.inbox.processor.close(grace=10.0)
        await runtime.services.background.join(grace=10.0)
        await runner.cleanup()
        await runtime.bot.session.close()
        await runtime.services.database.dispose()
        log.info("stopped")
