"""SQLite for the asyncio engine without a thread hop, and without a coroutine, per call.

aiosqlite runs every call (cursor, execute, fetch, close, commit) in a thread of its
own and wakes the event loop when it is done: three or four round trips between
threads per statement, about 1 ms of CPU and 2 ms of waiting on a small machine,
while the statement itself takes microseconds. SQLAlchemy's asyncio adapters for a
driver that runs inline still cost a greenlet switch and a coroutine per call (three
per statement). Here :class:`InlineSQLiteDialect` is SQLAlchemy's own :mod:`sqlite3`
dialect, declared asynchronous so that the asyncio engine accepts it: SQLAlchemy
calls :mod:`sqlite3` directly from its greenlet, as a synchronous application
would, and leaves it only to wait.

The one call that can wait long is taking a lock another process holds: the
connection's ``busy_timeout`` is 0 and a busy statement (which SQLite did not run)
is retried after an ``asyncio.sleep``, awaited from SQLAlchemy's greenlet, so the
event loop never blocks on it. Writes of this process are serialised by the
database's write lock before they reach SQLite (see :mod:`storage.db`).

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
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any, TypeVar

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util import await_
from sqlalchemy.util.concurrency import in_greenlet

BUSY_TIMEOUT = 10.0  # seconds a statement waits for another process's lock
_FIRST_PAUSE, _LONGEST_PAUSE = 0.001, 0.05
# About SQLite's own 1000-page threshold: a report flow's commit writes a few pages.
CHECKPOINT_EVERY = 200
DRIVER = "citizenbot_inline"
"""The driver name of :class:`InlineSQLiteDialect` in an engine URL (``sqlite+...``)."""

log = logging.getLogger(__name__)
T = TypeVar("T")


def is_busy(error: sqlite3.OperationalError) -> bool:
    """True when SQLite refused for a lock (busy or locked): the statement did not run."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def _patiently(call: Callable[[], T]) -> T:
    """``call()``, retried while another process holds the lock it needs.

    The first attempt costs nothing extra. Waiting is an ``asyncio.sleep`` awaited
    from SQLAlchemy's greenlet; outside one, a busy error is raised at once rather
    than block the event loop.
    """
    try:
        return call()
    except sqlite3.OperationalError as error:
        if not is_busy(error) or not in_greenlet():
            raise
    deadline = time.monotonic() + BUSY_TIMEOUT
    pause = _FIRST_PAUSE
    while True:
        await_(asyncio.sleep(pause))
        pause = min(pause * 2, _LONGEST_PAUSE)
        try:
            return call()
        except sqlite3.OperationalError as error:
            if not is_busy(error) or time.monotonic() >= deadline:
                raise


def checkpoint(path: str) -> None:
    """Copy the write-ahead log into the database without waiting for anyone (a thread's
    work: it syncs the file)."""
    connection = sqlite3.connect(path, timeout=0)
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.OperationalError as error:
        if not is_busy(error):  # busy: another process is checkpointing now
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


class _Ready:
    """An awaitable that is done at once."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        yield from ()


_READY = _Ready()


class Cursor(sqlite3.Cursor):
    """A :class:`sqlite3.Cursor` whose statements wait for another process's lock."""

    # The rows of a result handed to asyncio code (see _async_soft_close), else None.
    _buffered: deque[Any] | None = None

    async def _async_soft_close(self) -> None:
        # SQLAlchemy's asyncio layer calls this before it returns a result outside the
        # greenlet. Read the rows now, as aiosqlite's adapter does: the statement
        # ends here, not whenever the caller gets round to the rows.
        if self.description is not None:
            self._buffered = deque(super().fetchall())

    def fetchone(self) -> Any:
        """The next row."""
        if self._buffered is None:
            return super().fetchone()
        return self._buffered.popleft() if self._buffered else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        """The next ``size`` rows."""
        if size is None:
            size = self.arraysize
        if self._buffered is None:
            return super().fetchmany(size)
        rows = self._buffered
        return [rows.popleft() for _ in range(min(size, len(rows)))]

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        if self._buffered is None:
            return super().fetchall()
        rows = list(self._buffered)
        self._buffered.clear()
        return rows

    def execute(self, sql: str, parameters: Any = (), /) -> Cursor:
        """Run one statement (retried while another process holds the lock)."""
        self._buffered = None
        result = _patiently(lambda: super(Cursor, self).execute(sql, parameters))
        if in_greenlet():
            # SQLAlchemy's AsyncConnection insists that a statement awaited something.
            await_(_READY)
        return result

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor:
        """Run one statement for each parameter set."""
        rows = list(parameters)
        self._buffered = None
        result = _patiently(lambda: super(Cursor, self).executemany(sql, rows))
        if in_greenlet():
            await_(_READY)
        return result


class Connection(sqlite3.Connection):
    """A :class:`sqlite3.Connection` for the event loop (see the module's docstring)."""

    checkpointer: Checkpointer | None = None
    # Set by a caller that ran BEGIN IMMEDIATE itself just before SQLAlchemy begins.
    begun: bool = False

    def cursor(self, factory: Any = Cursor) -> Any:
        """A new :class:`Cursor`."""
        return super().cursor(factory)

    def try_begin_immediate(self) -> bool:
        """Start a write transaction at once; False when another process holds the lock.

        For SQLAlchemy's ``begin`` event: on False nothing changed, and the caller
        waits for the lock as any statement does (:meth:`Cursor.execute`).
        """
        try:
            super().execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if is_busy(error):
                return False
            raise
        return True

    def commit(self) -> None:
        """Commit the transaction, then let the other tasks run.

        Nothing here suspends otherwise, so a worker looping over many small
        transactions (a batch of follow-ups, say) would keep the event loop to
        itself: updates and other workers wait. One yield per transaction keeps the
        process fair for the price of a loop turn. Outside SQLAlchemy's greenlet (a
        unit of work's commit, see storage.db) the caller yields instead.
        """
        _patiently(super().commit)
        if self.checkpointer is not None:
            self.checkpointer.committed()
        if in_greenlet():
            await_(asyncio.sleep(0))


class _ExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # sqlite3 steps a statement as its rows are fetched: any cursor streams.
        return self._dbapi_connection.cursor()


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """SQLAlchemy's sqlite3 dialect for the asyncio engine, over :class:`Connection`."""

    driver = DRIVER
    is_async = True
    has_terminate = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = _ExecutionContext

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        """The asyncio pool, as for aiosqlite (one shared connection in memory)."""
        if cls._is_url_file_db(url):
            return pool.AsyncAdaptedQueuePool
        return pool.StaticPool

    def do_terminate(self, dbapi_connection: Any) -> None:
        """Close at once (closing never waits here)."""
        dbapi_connection.close()


registry.register(f"sqlite.{DRIVER}", __name__, "InlineSQLiteDialect")


def connector(path: str, checkpointer: Checkpointer | None = None) -> Callable[[], Connection]:
    """A ``creator`` for an engine of :class:`InlineSQLiteDialect`: a connection to ``path``.

    With a ``checkpointer``, the connection leaves checkpoints to it.
    """

    def connect() -> Connection:
        connection = sqlite3.connect(path, check_same_thread=False, timeout=0, factory=Connection)
        if checkpointer is not None:
            connection.execute("PRAGMA wal_autocheckpoint=0")
            connection.checkpointer = checkpointer
        return connection

    return connect
