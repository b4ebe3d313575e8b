"""Database engine, connection set-up and the unit of work.

SQLite (the embedded default) runs with WAL and foreign keys on, through a driver
that calls sqlite3 on the event loop (no thread hop per call; see
:mod:`storage.inline_sqlite`); in one process its write transactions are serialised
by an asyncio lock, which is cheaper than letting connections spin on SQLITE_BUSY.
They take turns on one kept connection, and once a transaction holds SQLite's lock
its statements run without SQLAlchemy's greenlets (see :class:`_WriterSession`).
PostgreSQL (asyncpg) needs no lock: row locks and ``SKIP LOCKED`` do that work; its
ordinary units of work keep their pooled connections between them (see
:class:`_KeptConnections`). On both, the few statements every update runs (the inbox
mark, the citizen lookup, the dialog save) run straight on the driver's connection of
the unit of work's transaction, without SQLAlchemy's execution layer (see
:mod:`storage.repositories._fast`).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from sqlalchemy import event, text, util
from sqlalchemy.engine import URL, Connection, Engine, Result, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.ext.asyncio.result import _ensure_sync_result
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from storage import inline_sqlite, jsoncodec
from storage.repositories import ReferenceCache, Repositories
from storage.repositories._dialect import serialize
from storage.repositories._fast import InPlaceSession
from storage.repositories._reference import changed_in
from storage.repositories.sessions import run_deferred_write

_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_ALIASES = {"postgres": "postgresql"}


def normalize_database_url(value: str) -> str:
    """Accept sqlite/postgresql URLs with or without a driver; return the async form.

    Raises ``ValueError`` with a message that never repeats the password.
    """
    try:
        url = make_url(value)
    except (ArgumentError, ValueError) as error:
        raise ValueError(
            "is not a database URL (e.g. sqlite+aiosqlite:///citizenbot.db)"
        ) from error
    backend = _ALIASES.get(url.get_backend_name(), url.get_backend_name())
    if backend not in _DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    _, plus, driver = url.drivername.partition("+")
    if plus and f"{backend}+{driver}" != _DRIVERS[backend]:
        raise ValueError(f"unsupported driver {driver!r}: use {_DRIVERS[backend]}")
    if backend == "sqlite" and url.database in (None, ""):
        raise ValueError("needs a file path, e.g. sqlite+aiosqlite:///citizenbot.db")
    if backend == "postgresql" and not url.host and not url.query.get("host"):
        raise ValueError("needs a host, e.g. postgresql+asyncpg://user@127.0.0.1/citizenbot")
    return url.set(drivername=_DRIVERS[backend]).render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    # Never block the event loop waiting for another process's lock: the driver
    # retries a busy statement with asyncio.sleep (see storage.inline_sqlite).
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    # Take the write lock when the transaction starts, so another process never
    # meets a deferred transaction that cannot upgrade (SQLITE_BUSY without waiting).
    # Straight to sqlite3 when the lock is free (nearly always); through the engine,
    # which waits for it without blocking the event loop, when another process has it.
    driver = conn.connection.driver_connection
    if isinstance(driver, inline_sqlite.Connection):
        if driver.begun:  # by a unit of work, just now (see _WriterSession._begin)
            driver.begun = False
            return
        if driver.try_begin_immediate():
            return
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # A reader's connection lives in a thread of its own (aiosqlite): waiting for a
    # lock there blocks nothing else. It refuses writes, and manages its own BEGIN.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(inline_sqlite.BUSY_TIMEOUT * 1000)}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()
    dbapi_connection.isolation_level = None


def _sqlite_begin_deferred(conn: Any) -> None:
    # One snapshot for the reader's whole transaction (WAL: writers go on meanwhile).
    conn.exec_driver_sql("BEGIN")


# A pooled PostgreSQL connection unused for longer than this is tested before use.
PING_AFTER_IDLE_SECONDS = 5.0
# PostgreSQL: the connections a process keeps for transactions, and the most it uses at
# once (as before: 10 kept and 10 more while busy), and those of urgent work.
POOL_SIZE = 20
URGENT_POOL_SIZE = 4
_RETURNED_AT = "returned_at"


def _ping_when_idle(engine: AsyncEngine, idle: float) -> None:
    """Test a pooled connection before use only if it sat unused for ``idle`` seconds.

    ``pool_pre_ping`` tests every checkout: a round trip per transaction (about 0.1 ms
    of CPU and 0.2 ms of waiting here) for connections used a moment ago. A connection
    the server dropped while it sat in the pool (a restart, an idle timeout) is
    replaced as before; one dropped within ``idle`` seconds of its last use fails its
    transaction, as a drop during a transaction does.
    """
    sync_engine = engine.sync_engine

    def returned(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned_at = record.info.get(_RETURNED_AT)
        if returned_at is None or time.monotonic() - returned_at < idle:
            return
        try:
            alive = sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("pooled connection failed its ping") from error
        if not alive:
            raise DisconnectionError("pooled connection failed its ping")

    event.listen(sync_engine, "checkin", returned)
    event.listen(sync_engine, "checkout", checked_out)


def _kept_usable(connection: AsyncConnection) -> bool:
    return not (connection.closed or connection.invalidated or connection.in_transaction())


def _ping(connection: Connection) -> None:
    assert connection.connection.dbapi_connection is not None
    connection.dialect.do_ping(connection.connection.dbapi_connection)


class _KeptConnections:
    """PostgreSQL: pooled connections the ordinary units of work take in turn, kept
    checked out between them.

    Taking a connection from SQLAlchemy's pool and giving it back costs two hops into
    its greenlets and the pool's bookkeeping: about 0.1 ms of CPU per transaction here,
    as much as the statement a plain answer sends. A connection given back is handed
    to the next unit of work waiting for one, or waits here for the next to come;
    either way it changes hands without awaiting.

    At most ``limit`` connections are taken from the pool this way (the rest of the
    pool serves the other users of the engine: long reads, health checks); a unit of
    work beyond them waits for one to be given back. One that sat unused for longer
    than ``idle`` seconds is pinged before use, as the pool's checkout does.
    """

    def __init__(self, engine: AsyncEngine, *, limit: int, idle: float) -> None:
        self._engine = engine
        self._limit = limit
        self._idle = idle
        self._out = 0  # taken from the pool through this, in use or waiting here
        self._waiting: list[tuple[AsyncConnection, float]] = []
        # Units of work waiting for a connection; None hands one the right to connect.
        self._takers: deque[asyncio.Future[AsyncConnection | None]] = deque()
        self._closed = False

    async def take(self) -> AsyncConnection:
        while self._waiting:
            connection, since = self._waiting.pop()
            if await self._fit(connection, since):
                return connection
        if self._closed or self._out < self._limit:
            return await self._connect()
        taker: asyncio.Future[AsyncConnection | None] = asyncio.get_running_loop().create_future()
        self._takers.append(taker)
        try:
            handed = await taker
        except asyncio.CancelledError:
            if taker.done() and not taker.cancelled():
                handed = taker.result()  # handed over just as it was cancelled: pass it on
                if handed is None:
                    self._hand(None)
                else:
                    await self.give(handed)
            raise
        return handed if handed is not None else await self._connect()

    async def give(self, connection: AsyncConnection) -> None:
        if self._closed or not _kept_usable(connection):
            await self._drop(connection)
        elif not self._hand(connection):
            self._waiting.append((connection, time.monotonic()))

    async def close(self) -> None:
        """Give every waiting connection back to the pool; later ones go there too."""
        self._closed = True
        waiting, self._waiting = self._waiting, []
        for connection, _ in waiting:
            await self._drop(connection)
        while self._hand(None):
            pass

    def _hand(self, connection: AsyncConnection | None) -> bool:
        """Hand ``connection`` (or, None, the right to connect) to the first waiting
        unit of work; False when none waits."""
        while self._takers:
            taker = self._takers.popleft()
            if not taker.done():
                taker.set_result(connection)
                return True
        return False

    async def _connect(self) -> AsyncConnection:
        self._out += 1
        try:
            return await self._engine.connect()
        except BaseException:
            self._out -= 1
            self._hand(None)
            raise

    async def _drop(self, connection: AsyncConnection) -> None:
        """Back to the pool (rolled back if need be); its place goes to a waiting one."""
        self._out -= 1
        self._hand(None)
        await connection.close()

    async def _fit(self, connection: AsyncConnection, since: float) -> bool:
        """True when the waiting ``connection`` may serve (pinged if it sat unused for
        long); otherwise it is dropped."""
        if _kept_usable(connection):
            if time.monotonic() - since < self._idle:
                return True
            try:
                await connection.run_sync(_ping)
            except BaseException as error:
                await connection.invalidate()
                await self._drop(connection)
                if not isinstance(error, Exception):
                    raise  # cancelled: the connection is not lost on the way
                return False
            return True
        await self._drop(connection)
        return False


class _WriteLock:
    """SQLite's one write lock, in this process: FIFO, but urgent waiters go first.

    Storing an incoming update is urgent (the Bot API waits for our answer); a
    handler's transaction is not, and may wait one transaction longer.
    """

    def __init__(self) -> None:
        self._held = False
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, urgent: bool) -> None:
        if not self._held and not self._urgent and not self._normal:
            self._held = True
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed over just as we were cancelled: pass it on
            raise

    @property
    def held(self) -> bool:
        """True while a transaction holds the lock."""
        return self._held

    def release(self) -> None:
        for waiters in (self._urgent, self._normal):
            while waiters:
                waiter = waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the lock passes straight to the waiter
                    return
        self._held = False


# What AsyncSession.execute asks of every statement: rows read before it returns.
_PREBUFFER = util.immutabledict({"prebuffer_rows": True})


class _WriterSession(InPlaceSession):
    """SQLite: a unit of work's session on the kept connection, run without greenlets.

    SQLAlchemy's asyncio layer runs each call in a new greenlet (several µs, more on a
    deep stack) so that a driver may wait. The inline driver (storage.inline_sqlite)
    waits only for another process's lock, and in a transaction that holds SQLite's
    write lock (BEGIN IMMEDIATE) there is no lock left to wait for: there a statement
    runs as a synchronous application runs it. Taking that lock is tried the same
    way, and waited for through the greenlet when another process holds it.
    """

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(bind=connection, expire_on_commit=False, autoflush=False)
        self._kept = connection
        driver = connection.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        assert isinstance(driver, inline_sqlite.Connection)
        self._driver = driver

    async def _begin(self) -> None:
        driver = self._driver
        if driver.in_transaction:  # left over by something cut short: not ours
            driver.rollback()
        if not driver.try_begin_immediate():
            # Another process holds the lock: wait for it without blocking the event loop.
            await greenlet_spawn(self.sync_session.connection)
            return
        driver.begun = True  # the begin event has nothing more to do
        try:
            self.sync_session.connection()
            began = not driver.begun and self._kept.in_transaction()
        except BaseException:
            driver.rollback()
            raise
        finally:
            driver.begun = False
        if not began:  # the session did not begin (it held the connection already)
            driver.rollback()
            raise RuntimeError("the session's connection is in no transaction")

    @property
    def kept(self) -> AsyncConnection:
        """The connection under the session."""
        return self._kept

    def get_bind(self, *_args: Any, **_kw: Any) -> Engine:
        """The engine, as for the other sessions (not the kept connection under it)."""
        return self._kept.sync_engine

    @property
    def in_write_transaction(self) -> bool:
        """True while the session's transaction holds SQLite's write lock."""
        return self._kept.in_transaction() and self._driver.in_transaction

    async def in_place(self) -> Connection | None:
        """The connection under the session once its transaction holds SQLite's write
        lock (begun now if it had not begun): a statement may then run on its driver in
        place (see :mod:`storage.repositories._fast`). None when statements must take
        the ordinary way (SQLite ended the transaction: an I/O error, say)."""
        if not self.in_write_transaction:
            if self._kept.in_transaction():
                return None
            await self._begin()
        return self._kept.sync_connection

    async def execute(
        self,
        statement: Any,
        params: Any = None,
        *,
        execution_options: Any = util.EMPTY_DICT,
        bind_arguments: Any = None,
        **kw: Any,
    ) -> Result[Any]:
        """:meth:`AsyncSession.execute`, run in place once the write lock is held."""
        if not self.in_write_transaction and await self.in_place() is None:
            return await self._in_greenlet(statement, params, execution_options, bind_arguments, kw)
        options = (
            util.immutabledict(execution_options).union(_PREBUFFER)
            if execution_options
            else _PREBUFFER
        )
        try:
            result = self.sync_session.execute(
                statement,
                params=params,
                execution_options=options,
                bind_arguments=bind_arguments,
                **kw,
            )
        except OperationalError as error:
            # Not expected with the write lock held; the statement did not run, and
            # the greenlet's way waits for the lock.
            if not (
                isinstance(error.orig, sqlite3.OperationalError)
                and inline_sqlite.is_busy(error.orig)
            ):
                raise
            return await self._in_greenlet(statement, params, execution_options, bind_arguments, kw)
        return await _ensure_sync_result(result, self.execute)

    async def _in_greenlet(
        self,
        statement: Any,
        params: Any,
        execution_options: Any,
        bind_arguments: Any,
        kw: dict[str, Any],
    ) -> Result[Any]:
        result: Result[Any] = await super().execute(
            statement,
            params,
            execution_options=execution_options,
            bind_arguments=bind_arguments,
            **kw,
        )
        return result


class _KeptSession(InPlaceSession):
    """PostgreSQL: an ordinary unit of work's session on a kept connection (see
    :class:`_KeptConnections`), whose transaction begins and, when nothing began on
    the server, commits without a hop into SQLAlchemy's greenlets."""

    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(bind=connection, expire_on_commit=False, autoflush=False)
        self._kept = connection

    @property
    def kept(self) -> AsyncConnection:
        """The connection under the session."""
        return self._kept

    def get_bind(self, *_args: Any, **_kw: Any) -> Engine:
        """The engine, as for the other sessions (not the kept connection under it)."""
        return self._kept.sync_engine

    async def in_place(self) -> Connection | None:
        """The connection under the session, in the session's transaction (begun now
        if it had not begun: the asyncpg adapter's BEGIN waits for the first
        statement, so nothing is awaited). None when it must be had the ordinary way
        (the connection was lost)."""
        kept = self._kept
        if kept.closed or kept.invalidated:
            return None
        return self.sync_session.connection()

    @property
    def begun_on_server(self) -> bool:
        """True when the transaction sent its BEGIN (its end is a round trip)."""
        connection = self._kept.sync_connection
        if connection is None or connection.closed or connection.invalidated:
            return True
        adapter: Any = connection.connection.dbapi_connection
        return adapter is None or adapter._transaction is not None


class Database:
    """One engine and its session factory; build it once at start-up."""

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        pool_size: int = POOL_SIZE,
        ping_after_idle: float = PING_AFTER_IDLE_SECONDS,
    ) -> None:
        self.url: URL = make_url(normalize_database_url(url))
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            path = self.url.database or ""
            self.checkpointer: inline_sqlite.Checkpointer | None = (
                inline_sqlite.Checkpointer(path) if path != ":memory:" else None
            )
            self.engine: AsyncEngine = create_async_engine(
                self.url.set(drivername=f"sqlite+{inline_sqlite.DRIVER}"),
                echo=echo,
                creator=inline_sqlite.connector(path, self.checkpointer),
                json_serializer=jsoncodec.dumps,
            )
            sync_engine = self.engine.sync_engine
            event.listen(sync_engine, "connect", _sqlite_pragmas)
            # Let SQLAlchemy stop issuing its own BEGIN so ours is the one used.
            event.listen(
                sync_engine,
                "connect",
                lambda dbapi_connection, _record: setattr(
                    dbapi_connection, "isolation_level", None
                ),
            )
            event.listen(sync_engine, "begin", _sqlite_begin_immediate)
            self._urgent_engine = self.engine
            # Long reads (digests, exports) through aiosqlite's thread: a query of
            # seconds must not stop the event loop, nor hold the write lock.
            self._reader_engine = create_async_engine(
                self.url, echo=echo, json_serializer=jsoncodec.dumps
            )
            event.listen(self._reader_engine.sync_engine, "connect", _sqlite_reader_pragmas)
            event.listen(self._reader_engine.sync_engine, "begin", _sqlite_begin_deferred)
        else:
            self.checkpointer = None
            # A fixed number of connections, kept open. With "overflow" connections
            # beyond the kept ones, SQLAlchemy closes each one returned while the pool
            # is full and opens another for the next transaction: under 64 updates at
            # once that was some 24 new PostgreSQL sessions a second (a server process
            # each, and every statement prepared again on it).
            self.engine = create_async_engine(
                self.url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=0,
                json_serializer=jsoncodec.dumps_jsonb,
            )
            # Urgent work gets connections of its own: it never queues behind the
            # handlers' transactions for one of the pool's.
            self._urgent_engine = create_async_engine(
                self.url,
                echo=echo,
                pool_size=URGENT_POOL_SIZE,
                max_overflow=0,
                json_serializer=jsoncodec.dumps_jsonb,
            )
            for engine in (self.engine, self._urgent_engine):
                _ping_when_idle(engine, ping_after_idle)
            self._reader_engine = self.engine  # asyncpg never blocks the event loop
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._urgent_sessions = async_sessionmaker(
            self._urgent_engine, expire_on_commit=False, autoflush=False
        )
        self._reader_sessions = async_sessionmaker(
            self._reader_engine, expire_on_commit=False, autoflush=False
        )
        # One statement that must be durable at once (storing incoming updates): on
        # PostgreSQL without BEGIN and COMMIT, one round trip instead of three. SQLite
        # has no such round trips: there it is an urgent transaction.
        self._autocommit_sessions = (
            self._urgent_sessions
            if self.is_sqlite
            else async_sessionmaker(
                self._urgent_engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
                autoflush=False,
            )
        )
        # PostgreSQL: the ordinary units of work's connections, kept between them; a
        # quarter of the pool stays for the engine's other users.
        kept = pool_size - max(1, pool_size // 4)
        self._kept = (
            _KeptConnections(self.engine, limit=kept, idle=ping_after_idle)
            if not self.is_sqlite and kept > 0
            else None
        )
        self._write_lock = _WriteLock() if self.is_sqlite else None
        # SQLite: the one connection writers use in turn (the write lock serialises
        # them), kept open: no pool checkout and return per transaction.
        self._writer: AsyncConnection | None = None
        # The catalogue and the areas, read once and kept (see storage.repositories._reference).
        self.reference_cache = ReferenceCache()

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """Every engine this database uses (two on SQLite, the second for readers; two
        on PostgreSQL, the second for urgent work)."""
        return tuple(
            {id(e): e for e in (self.engine, self._urgent_engine, self._reader_engine)}.values()
        )

    def uow(self, *, urgent: bool = False) -> UnitOfWork:
        """A new unit of work: one transaction, committed when the block ends cleanly.

        ``urgent`` is for short transactions someone waits for (storing incoming
        updates): they go before the others waiting for SQLite's write lock, and on
        PostgreSQL they use connections of their own.
        """
        return UnitOfWork(self, urgent=urgent)

    def single_statement(self) -> UnitOfWork:
        """An urgent unit of work for exactly one write statement, durable when it
        returns: on PostgreSQL it runs in autocommit (no BEGIN, no COMMIT); on SQLite
        it is an urgent transaction. More than one statement would not be atomic."""
        return UnitOfWork(self, urgent=True, autocommit=True)

    def reader(self) -> UnitOfWork:
        """A read-only unit of work for long reads (a digest, an export).

        On SQLite it runs in a thread of its own, takes no write lock and reads one
        snapshot, so neither the event loop nor the writers wait for it; a write in
        it fails. On PostgreSQL it is an ordinary transaction, rolled back at the end.
        """
        return UnitOfWork(self, reader=True)

    @asynccontextmanager
    async def _locked(self, *, urgent: bool) -> AsyncIterator[None]:
        if self._write_lock is None:
            yield
            return
        await self._write_lock.acquire(urgent=urgent)
        try:
            yield
        finally:
            self._write_lock.release()

    async def _writer_session(self) -> _WriterSession:
        """SQLite, with the write lock held: a new session on the kept connection."""
        connection = self._writer
        if connection is not None and (connection.closed or connection.invalidated):
            self._writer = None
            with contextlib.suppress(Exception):
                await connection.close()
            connection = None
        if connection is None:
            connection = await self.engine.connect()
            self._writer = connection
        elif connection.in_transaction():  # a unit of work cut short before its end
            await connection.rollback()
        return _WriterSession(connection)

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def dispose(self) -> None:
        """Close every pooled connection (after the running checkpoint, if any)."""
        if self.checkpointer is not None:
            await self.checkpointer.wait()
        if self._kept is not None:
            await self._kept.close()
        writer, self._writer = self._writer, None
        # A unit of work still running keeps it until it ends, then closes it (as a
        # pooled connection checked out during dispose is closed when returned).
        if writer is not None and not (self._write_lock is not None and self._write_lock.held):
            await writer.close()
        for engine in self.engines:
            await engine.dispose()


def _commit_and_close(session: Session) -> None:
    try:
        session.commit()
    finally:
        session.close()


class UnitOfWork:
    """One transaction shared by the repositories it exposes.

    Repositories never commit: leaving the ``async with`` block commits, an
    exception rolls back.
    """

    session: AsyncSession
    repos: Repositories

    def __init__(
        self,
        database: Database,
        *,
        urgent: bool = False,
        reader: bool = False,
        autocommit: bool = False,
    ) -> None:
        self._database = database
        self._urgent = urgent
        self._reader = reader
        self._autocommit = autocommit
        self._lock_cm: Any = None

    async def __aenter__(self) -> UnitOfWork:
        database = self._database
        self._lock_cm = (
            contextlib.nullcontext() if self._reader else database._locked(urgent=self._urgent)
        )
        await self._lock_cm.__aenter__()
        try:
            if self._reader:
                self.session = database._reader_sessions()
            elif database._write_lock is not None:
                self.session = await database._writer_session()
            elif self._autocommit:
                self.session = database._autocommit_sessions()
            elif database._kept is not None and not self._urgent:
                connection = await database._kept.take()
                try:
                    self.session = _KeptSession(connection)
                except BaseException:
                    await database._kept.give(connection)
                    raise
            else:
                sessions = database._urgent_sessions if self._urgent else database.sessions
                self.session = sessions()
            # A reader's snapshot may predate an edit that already dropped the kept
            # copy: what it reads of the catalogue is not kept.
            cache = None if self._reader else database.reference_cache
            self.repos = Repositories(self.session, cache)
        except BaseException:
            await self._lock_cm.__aexit__(None, None, None)
            raise
        return self

    async def serialize(self, key: int) -> None:
        """Take turns with other instances' transactions that serialise on ``key``."""
        await serialize(self.session, key)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        if exc_type is None and not self._reader:
            try:
                await run_deferred_write(session)
            except BaseException as error:
                await self.__aexit__(type(error), error, error.__traceback__)
                raise
        wrote = isinstance(session, _WriterSession) and session.in_write_transaction
        inline = (
            wrote
            or (isinstance(session, _WriterSession) and not session.sync_session.in_transaction())
            or (
                isinstance(session, _KeptSession)
                and not session.begun_on_server
                and not (session.new or session.dirty or session.deleted)
            )
        )
        try:
            if exc_type is None and not self._reader:
                if inline:
                    # Nothing left to wait for (see _WriterSession, _KeptSession): no
                    # greenlet.
                    _commit_and_close(session.sync_session)
                else:
                    # One hop into SQLAlchemy's greenlet for both, not one each.
                    await session.run_sync(_commit_and_close)
                changed = changed_in(session)
                if changed:
                    self._database.reference_cache.invalidate(changed)
            elif inline:
                try:
                    session.sync_session.rollback()
                finally:
                    session.sync_session.close()
            else:
                try:
                    await session.rollback()
                finally:
                    await session.close()
        finally:
            try:
                if isinstance(session, _KeptSession):
                    assert self._database._kept is not None
                    await self._database._kept.give(session.kept)
                elif (
                    isinstance(session, _WriterSession)
                    and session.kept is not self._database._writer
                ):
                    await session.kept.close()  # the database was disposed meanwhile
            finally:
                await self._lock_cm.__aexit__(exc_type, exc, traceback)
        if wrote and exc_type is None:
            # The driver's commit yields to the other tasks only inside a greenlet: a
            # worker looping over small transactions must not keep the event loop.
            await asyncio.sleep(0)

    async def flush(self) -> None:
        """Send pending ORM changes to the database inside the transaction."""
        await self.session.flush()
