"""The hot statements skip SQLAlchemy's execution layer, in the unit of work's transaction.

Every update of a citizen's dialog runs the same few statements (the inbox mark, the
citizen lookup, the dialog session's save), and the report flow a few more (the
session's start and end, the search for nearby reports, the report, its follow-up and
its reply). Through SQLAlchemy's execution layer each costs several times what the
driver itself costs: the execution context, the result wrapping and, on PostgreSQL, a
greenlet per call. :class:`FastStatement` runs such a statement on the driver's
connection the transaction already holds:

- on PostgreSQL, the asyncpg connection of the session's transaction;
- on SQLite, the unit of work's kept sqlite3 connection, once its transaction holds
  SQLite's write lock (see ``_WriterSession`` in :mod:`storage.db`), in place.

What SQLAlchemy would do around it is done the same way:

- the SQL is the statement compiled by the engine's dialect (on PostgreSQL the same
  string, so the adapter's cache of prepared statements serves both ways), parameters
  and rows go through the same type processors (UTC timestamps, JSON, NULLs);
- on PostgreSQL the adapter's mutex is held and its lazy BEGIN is taken first, exactly
  as its cursor does (in autocommit the adapter begins nothing, and neither does this);
- ``after_cursor_execute`` listeners see the statement (with neither cursor nor
  execution context), so counting statements stays meaningful;
- an error goes through the driver's translation and the connection's own handling
  (wrapped as SQLAlchemy's exceptions; a dropped connection is invalidated), so the
  unit of work rolls back as before.

Anything else — another driver, an engine that echoes, ``before_cursor_execute`` or
dialect ``do_execute`` listeners, a connection invalidated or not in a transaction, a
SQLite transaction that does not hold the write lock — takes SQLAlchemy's ordinary
way. This leans on private parts of SQLAlchemy 2.1's asyncpg adapter
(``_execute_mutex``, ``_transaction``, ``_start_transaction``, ``_prepare``,
``_handle_exception``) and of ``Connection`` (``_has_events``, ``_echo``,
``_handle_dbapi_exception``): the tests in ``tests/storage/test_fast_statements.py``
run through each, so an upgrade of SQLAlchemy that changes them fails there first.
"""

from __future__ import annotations

import re
import sqlite3
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import BindParameter, Column, Double, Float, Numeric, Table, bindparam
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Executable
from sqlalchemy.util import greenlet_spawn

from storage import inline_sqlite

# The session's transaction and the connection it holds (see _connection).
_HELD = "pg_fast_connection"

_Processor = Callable[[Any], Any] | None


class FastResult:
    """The rows (plain tuples) and row count of a statement run the fast way."""

    __slots__ = ("rowcount", "rows")

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def all(self) -> list[tuple[Any, ...]]:
        """Every row."""
        return self.rows

    def first(self) -> tuple[Any, ...] | None:
        """The first row, or None."""
        return self.rows[0] if self.rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self.rows[0][0] if self.rows else None

    def one(self) -> tuple[Any, ...]:
        """The one row; SQLAlchemy's error when there is none or more than one."""
        if len(self.rows) != 1:
            raise (NoResultFound if not self.rows else MultipleResultsFound)(
                f"expected one row, got {len(self.rows)}"
            )
        return self.rows[0]


def _float_column(result_column: Any) -> bool:
    """True for a result that is a table's float column, read as a float: the drivers
    (asyncpg, sqlite3) give a float for it, as SQLAlchemy's processors leave it."""
    _key, _name, objects, kind = result_column
    return (
        isinstance(kind, Float)
        and not kind.asdecimal
        and any(isinstance(item, Column) and item.type is kind for item in objects)
    )


class _Plan:
    """A statement compiled for one dialect: its SQL and how to convert values."""

    __slots__ = ("arguments", "results", "sql")

    def __init__(self, statement: Executable, dialect: Dialect) -> None:
        compiled: Any = cast(Any, statement).compile(dialect=dialect)
        # What SQLAlchemy works out at each execution, this does not: Python-side column
        # defaults, expanding (IN) parameters, callable values, and result types that
        # read the driver's column type (Numeric). Such a statement is refused here.
        # A float column (not as Decimal) is read as the driver gives it: a float.
        if (
            compiled.insert_prefetch
            or compiled.update_prefetch
            or compiled.literal_execute_params
            or compiled.post_compile_params
            or any(bind.callable is not None for bind in compiled.binds.values())
            or any(
                isinstance(column[3], (Numeric, Float, Double)) and not _float_column(column)
                for column in compiled._result_columns
            )
        ):
            raise TypeError(f"not a statement FastStatement can run: {compiled.string}")
        self.sql: str = compiled.string
        processors: Mapping[str, Any] = compiled._bind_processors
        # Per position: the name of a parameter given at each call, or a constant of
        # the statement (a literal value, converted once).
        self.arguments: list[tuple[str | None, _Processor, Any]] = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            processor = processors.get(name)
            if bind.required:
                self.arguments.append((name, processor, None))
            else:
                value = bind.effective_value
                self.arguments.append((None, None, processor(value) if processor else value))
        results = [
            None if _float_column(column) else column[3]._cached_result_processor(dialect, None)
            for column in compiled._result_columns
        ]
        self.results: tuple[_Processor, ...] | None = tuple(results) if any(results) else None

    def bind(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            constant if name is None else (processor(params[name]) if processor else params[name])
            for name, processor, constant in self.arguments
        )

    def convert(self, records: Sequence[Any]) -> list[tuple[Any, ...]]:
        results = self.results
        if results is None:
            return [tuple(record) for record in records]
        return [
            tuple(
                value if processor is None else processor(value)
                for processor, value in zip(results, record, strict=True)
            )
            for record in records
        ]


def typed_parameters(
    table: Table, names: Sequence[str], *, prefix: str = "p_"
) -> dict[str, BindParameter[Any]]:
    """For a statement built once: a parameter per column of ``names``, named
    ``prefix`` + the column's name and typed as the column (so its values go through
    the column type's conversions)."""
    return {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names}


class InPlaceSession(AsyncSession):
    """A session whose connection a statement may use without awaiting SQLAlchemy's
    greenlets: SQLite's writer session and PostgreSQL's kept one (in
    :mod:`storage.db`)."""

    async def in_place(self) -> Connection | None:
        """The connection under the session, in its transaction; None when statements
        must take the ordinary way."""
        raise NotImplementedError


class FastStatement:
    """A Core statement that runs on PostgreSQL's asyncpg connection without SQLAlchemy's
    execution layer (see the module's docstring), and the ordinary way elsewhere."""

    __slots__ = ("_plans", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        # Compiled once per engine's dialect (its JSON serializer is the engine's).
        self._plans: weakref.WeakKeyDictionary[Dialect, _Plan] = weakref.WeakKeyDictionary()

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect)
        if plan is None:
            plan = self._plans[dialect] = _Plan(self.statement, dialect)
        return plan

    async def execute(
        self, session: AsyncSession, params: Mapping[str, Any], *, begin: bool = True
    ) -> Any:
        """Run the statement in the session's transaction; a :class:`FastResult` the
        fast way, SQLAlchemy's result otherwise (both give ``all``, ``first``, ``scalar``
        and ``rowcount``).

        ``begin=False``, on PostgreSQL: when the transaction has not begun on the
        server yet (the adapter's BEGIN is lazy), the statement runs on its own, in
        autocommit, and the transaction still begins with its next statement; if none
        comes, the commit has nothing to send. One statement then is atomic and durable
        when it returns, with no BEGIN and no COMMIT round trip. Elsewhere it changes
        nothing."""
        if isinstance(session, InPlaceSession):
            connection = await session.in_place()
            if connection is not None and _plain(connection):
                plan = self._plan(connection.dialect)
                if connection.dialect.driver == "asyncpg":
                    return await _run(connection, plan, params, begin)
                try:
                    return await _run_in_place(connection, plan, params)
                except _BusyError:
                    pass  # not expected with the write lock held: the ordinary way waits
            return await session.execute(self.statement, dict(params))
        connection = await _connection(session)
        if connection is None:
            return await session.execute(self.statement, dict(params))
        return await _run(connection, self._plan(connection.dialect), params, begin)


async def _connection(session: AsyncSession) -> Connection | None:
    """The connection of the session's transaction when the fast way may use it."""
    sync = session.sync_session
    info = sync.info
    transaction = sync.get_transaction()
    held = info.get(_HELD)
    if held is False:
        return None
    if held is not None and transaction is not None and held[0] is transaction:
        connection: Connection = held[1]
    else:
        if sync.get_bind().dialect.driver != "asyncpg":
            info[_HELD] = False  # the session's engine never changes
            return None
        begun = (await session.connection()).sync_connection  # begins, checks out
        assert begun is not None
        connection = begun
        info[_HELD] = (sync.get_transaction(), connection)
    return connection if _plain(connection) else None


def _plain(connection: Connection) -> bool:
    """True when nothing SQLAlchemy does around a statement would be missed."""
    return not (
        connection.invalidated
        or connection.closed
        or not connection.in_transaction()
        or connection._echo
        or connection.dialect._has_events
        or (
            (connection._has_events or connection.engine._has_events)
            and connection.dispatch.before_cursor_execute
        )
    )


async def _bind(connection: Connection, plan: _Plan, params: Mapping[str, Any]) -> tuple[Any, ...]:
    try:
        return plan.bind(params)
    except Exception as error:  # a naive datetime, say: a StatementError, as SQLAlchemy's
        await greenlet_spawn(
            connection._handle_dbapi_exception, error, plan.sql, dict(params), None, None
        )
        raise  # not reached: the connection's handling raises


def _executed(connection: Connection, sql: str, arguments: tuple[Any, ...]) -> None:
    # After the statement, as SQLAlchemy fires it (neither cursor nor context here).
    if connection._has_events or connection.engine._has_events:
        connection.dispatch.after_cursor_execute(connection, None, sql, arguments, None, False)


class _BusyError(Exception):
    """SQLite refused a statement for a lock (it did not run it)."""


async def _run_in_place(
    connection: Connection, plan: _Plan, params: Mapping[str, Any]
) -> FastResult:
    """SQLite: the statement on the kept sqlite3 connection, whose transaction holds the
    write lock (nothing to wait for, so nothing to await but on errors)."""
    arguments = await _bind(connection, plan, params)
    driver: Any = connection.connection.driver_connection
    try:
        cursor = driver.execute(plan.sql, arguments)
        rows = cursor.fetchall()
    except sqlite3.Error as error:
        if isinstance(error, sqlite3.OperationalError) and inline_sqlite.is_busy(error):
            raise _BusyError from error
        await greenlet_spawn(
            connection._handle_dbapi_exception, error, plan.sql, arguments, None, None
        )
        raise  # not reached: the connection's handling raises
    _executed(connection, plan.sql, arguments)
    return FastResult(plan.convert(rows), cursor.rowcount)


async def _run(
    connection: Connection, plan: _Plan, params: Mapping[str, Any], begin: bool = True
) -> FastResult:
    """PostgreSQL: the statement on the transaction's asyncpg connection (with
    ``begin=False``, on its own when the transaction has not begun on the server)."""
    arguments = await _bind(connection, plan, params)
    adapter: Any = connection.connection.dbapi_connection
    dialect: Any = connection.dialect
    try:
        async with adapter._execute_mutex:
            if begin and adapter._transaction is None:
                await adapter._start_transaction()  # the adapter's lazy BEGIN
            prepared, _ = await adapter._prepare(plan.sql, dialect._invalidate_schema_cache_asof)
            records = await prepared.fetch(*arguments)
            status = prepared.get_statusmsg() or ""
    except BaseException as error:
        await _fail(connection, adapter, error, plan.sql, arguments)
        raise  # not reached: _fail raises
    _executed(connection, plan.sql, arguments)
    return FastResult(plan.convert(records), _rowcount(status))


async def _fail(
    connection: Connection, adapter: Any, error: BaseException, sql: str, arguments: Any
) -> None:
    """Raise ``error`` as SQLAlchemy would have (translated, wrapped, the connection
    invalidated if it was lost), in a greenlet as the connection's own handling expects."""
    if isinstance(error, Exception):
        try:
            adapter._handle_exception(error)
        except Exception as translated:  # the DBAPI's error for asyncpg's
            error = translated
    await greenlet_spawn(connection._handle_dbapi_exception, error, sql, arguments, None, None)


# As the adapter reads the command tag: "UPDATE 1", "INSERT 0 1", "SELECT 3".
_ROWCOUNT = re.compile(r"(?:SELECT|UPDATE|DELETE|INSERT \d+) (\d+)")


def _rowcount(status: str) -> int:
    found = _ROWCOUNT.match(status)
    return int(found.group(1)) if found else -1
