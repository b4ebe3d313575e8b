"""SQLite for the asyncio engine without a thread hop per call.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a thread of its
own and wakes the event loop when it is done: three or four round trips between
threads per statement, about 1 ms of CPU and 2 ms of waiting on a small machine,
while the statement itself takes microseconds. Here the same aiosqlite-shaped
objects, which SQLAlchemy's aiosqlite dialect drives, call :mod:`sqlite3` directly.

The one call that can wait long is taking a lock another process holds: the
connection's ``busy_timeout`` is 0 and a busy statement (which SQLite did not run)
is retried with ``asyncio.sleep`` instead, so the event loop never blocks on it.
Writes of this process are serialised by the database's write lock before they
reach SQLite (see :mod:`storage.db`).

The other is a WAL checkpoint: SQLite runs one in the commit that makes the log
long enough, copying pages and syncing the file (milliseconds, up to 0.1 s under
load) on the event loop. These connections do not checkpoint by themselves
(``wal_autocheckpoint=0``): a :class:`Checkpointer` runs a passive checkpoint in a
worker thread, on a connection of its own, every :data:`CHECKPOINT_EVERY` commits.
Commits stay as durable as they were; only the copying into the database moves.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from typing import Any

BUSY_TIMEOUT = 10.0  # seconds a statement waits for another process's lock
_FIRST_PAUSE, _LONGEST_PAUSE = 0.001, 0.05
# About SQLite's own 1000-page threshold: a report flow's commit writes a few pages.
CHECKPOINT_EVERY = 200

log = logging.getLogger(__name__)


def _busy(error: sqlite3.OperationalError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


async def _patiently(call: Callable[[], Any]) -> Any:
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = _FIRST_PAUSE
    while True:
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not _busy(error) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


def checkpoint(path: str) -> None:
    """Copy the write-ahead log into the database without waiting for anyone (a thread's
    work: it syncs the file)."""
    connection = sqlite3.connect(path, timeout=0)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.OperationalError as error:
        if not _busy(error):  # busy: another process is checkpointing now
            raise
    finally:
        connection.close()


class Checkpointer:
    """Runs a passive checkpoint off the event loop every ``every`` commits (one at a time)."""

    def __init__(self, path: str, *, every: int = CHECKPOINT_EVERY) -> None:
        self._path = path
        self._every = every
        self._commits = 0
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        """Count a commit; start a checkpoint when enough went by and none is running."""
        self._commits += 1
        if self._commits < self._every or (self._running and not self._running.done()):
            return
        self._commits = 0
        self._running = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        try:
            await asyncio.to_thread(checkpoint, self._path)
        except Exception:  # the next one will try again; SQLite keeps the log meanwhile
            log.exception("checkpoint of %s failed", self._path)

    async def wait(self) -> None:
        """Until the running checkpoint, if any, is over."""
        if self._running is not None:
            await asyncio.shield(self._running)


class _InlineQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses directly once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:
            future.set_exception(error)


class Cursor:
    """An aiosqlite-shaped cursor over a :class:`sqlite3.Cursor`."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        """Run one statement (retried while another process holds the lock)."""
        await _patiently(lambda: self._cursor.execute(sql, parameters))
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        """Run one statement for each parameter set."""
        rows = list(parameters)
        await _patiently(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        """The next row."""
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """The next ``size`` rows."""
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        """The remaining rows."""
        return self._cursor.fetchall()

    async def close(self) -> None:
        """Close the cursor."""
        self._cursor.close()

    @property
    def description(self) -> Any:
        """The DB-API description of the last statement."""
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        """Rows changed by the last statement."""
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        """The rowid of the last inserted row."""
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        """Rows fetched by default by :meth:`fetchmany`."""
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class Connection:
    """An aiosqlite-shaped connection over a :class:`sqlite3.Connection`."""

    def __init__(
        self, connection: sqlite3.Connection, checkpointer: Checkpointer | None = None
    ) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._tx = _InlineQueue()
        self._checkpointer = checkpointer

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        """The sqlite3 module's transaction handling (None: ours)."""
        return self._live.isolation_level

    def cursor(self) -> Cursor:
        """A new cursor (aiosqlite returns an awaitable context manager; so do we)."""
        return Cursor(self._live.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        """Run one statement on a new cursor."""
        cursor = self.cursor()
        return await cursor.execute(sql, parameters)

    def try_begin_immediate(self) -> bool:
        """Start a write transaction at once; False when another process holds the lock.

        A plain call, for SQLAlchemy's synchronous ``begin`` event: a statement run
        through the engine there costs more than the transaction's other statements.
        On False nothing changed, and the caller waits for the lock as any statement
        does (:meth:`Cursor.execute`).
        """
        try:
            self._live.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if _busy(error):
                return False
            raise
        return True

    async def commit(self) -> None:
        """Commit the transaction, then let the other tasks run.

        Without a thread hop nothing here suspends, so a worker looping over many
        small transactions (a batch of follow-ups, say) would keep the event loop
        to itself: updates and other workers wait. One yield per transaction keeps
        the process fair for the price of a loop turn.
        """
        await _patiently(self._live.commit)
        if self._checkpointer is not None:
            self._checkpointer.committed()
        await asyncio.sleep(0)

    async def rollback(self) -> None:
        """Roll the transaction back."""
        self._live.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Register a SQL function."""
        self._live.create_function(*args, **kwargs)

    async def close(self) -> None:
        """Close the connection (again is fine)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def connector(path: str, checkpointer: Checkpointer | None = None) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine``: a new connection to ``path``.

    With a ``checkpointer``, the connection leaves checkpoints to it.
    """

    async def connect() -> Connection:
        connection = sqlite3.connect(path, check_same_thread=False, timeout=0)
        if checkpointer is not None:
            connection.execute("PRAGMA wal_autocheckpoint=0")
        return Connection(connection, checkpointer)

    return connect
