"""Citizens: registration, language, reachability.

The citizen an update comes from is read once (:meth:`CitizenRepository.ensure`) and
kept for the rest of the transaction, so that what the update's handling reads of
them by id again (the follow-ups of a new report, say) costs no statement. Every
write here forgets what was kept.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import FromClause, Select, Table, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Citizen, DialogSession
from storage.records import CitizenRecord
from storage.repositories._dialect import dialect_name
from storage.repositories._fast import FastStatement
from storage.repositories.sessions import record_of, remember, session_columns

# Crockford's base32 without look-alikes: pseudonyms are read aloud on the phone.
_PSEUDONYM_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# last_seen_at is for reports on activity, not auditing: refresh it at most this often
# so that an ordinary message costs no write.
LAST_SEEN_RESOLUTION = timedelta(minutes=10)


# What this transaction read of citizens, by id (see the module's docstring).
_KNOWN = "citizens_known"


def _known(session: AsyncSession) -> dict[int, CitizenRecord]:
    known: dict[int, CitizenRecord] = session.info.setdefault(_KNOWN, {})
    return known


def _forget(session: AsyncSession) -> None:
    session.info.pop(_KNOWN, None)
    session.info.pop(_READ_AHEAD, None)


def new_pseudonym() -> str:
    """A stable, random, human-friendly pseudonym such as ``C-7KQ2M9XA``."""
    # 32 letters: each random byte's low five bits pick one uniformly (one read of the
    # system's random source instead of eight).
    return "C-" + "".join(_PSEUDONYM_ALPHABET[byte & 31] for byte in secrets.token_bytes(8))


def _record(row: Citizen) -> CitizenRecord:
    return CitizenRecord(
        id=row.id,
        telegram_id=row.telegram_id,
        pseudonym=row.pseudonym,
        language=row.language,
        language_chosen=row.language_chosen,
        first_name=row.first_name,
        username=row.username,
        timezone=row.timezone,
        consented_at=row.consented_at,
        created_at=row.created_at,
        stopped_at=row.stopped_at,
        unreachable_at=row.unreachable_at,
    )


_CITIZENS = cast(Table, Citizen.__table__)
_SESSIONS = cast(Table, DialogSession.__table__)
_CITIZEN_COLUMNS = (
    _CITIZENS.c.id,
    _CITIZENS.c.telegram_id,
    _CITIZENS.c.pseudonym,
    _CITIZENS.c.language,
    _CITIZENS.c.language_chosen,
    _CITIZENS.c.first_name,
    _CITIZENS.c.username,
    _CITIZENS.c.timezone,
    _CITIZENS.c.consented_at,
    _CITIZENS.c.created_at,
    _CITIZENS.c.stopped_at,
    _CITIZENS.c.unreachable_at,
    _CITIZENS.c.last_seen_at,  # last: not part of the record
)
# A Core statement built once: every update runs it, and the ORM would add more
# than the statement costs.
_ENSURE_LOOKUP = FastStatement(
    select(*_CITIZEN_COLUMNS, *session_columns())
    .select_from(_CITIZENS)
    .outerjoin(_SESSIONS, _SESSIONS.c.citizen_id == _CITIZENS.c.id)
    .where(_CITIZENS.c.telegram_id == bindparam("telegram_id"))
)
# The lookup's row read ahead by another statement (see lookup_joined_to), for ensure(),
# and how many columns of such a row are the lookup's (its last ones).
_READ_AHEAD = "citizens_read_ahead"
_LOOKUP_WIDTH = len(_CITIZEN_COLUMNS) + len(session_columns())


def lookup_joined_to(driving: FromClause) -> Select[Any]:
    """``driving``'s columns, then ensure()'s lookup of the citizen ``telegram_id``
    (with the open session): one row per row of ``driving``, the citizen's columns
    NULL for a stranger.

    For a statement that reads something else too (PostgreSQL: whether the update is
    in the inbox) and the citizen in the same round trip; hand the row to
    :func:`read_ahead`.
    """
    return select(*driving.c, *_CITIZEN_COLUMNS, *session_columns()).select_from(
        driving.outerjoin(_CITIZENS, _CITIZENS.c.telegram_id == bindparam("telegram_id")).outerjoin(
            _SESSIONS, _SESSIONS.c.citizen_id == _CITIZENS.c.id
        )
    )


def read_ahead(session: AsyncSession, telegram_id: int, row: Sequence[Any]) -> None:
    """Keep the lookup's part of a :func:`lookup_joined_to` row (its last columns) for
    the transaction's next ensure() of ``telegram_id``, which then runs no lookup."""
    session.info[_READ_AHEAD] = (telegram_id, tuple(row[-_LOOKUP_WIDTH:]))


def _register(insert: Any) -> Any:
    # Insert-or-ignore: another instance may register the same user concurrently.
    return (
        insert(_CITIZENS)
        .values(
            telegram_id=bindparam("p_telegram_id"),
            pseudonym=bindparam("p_pseudonym"),
            language=bindparam("p_language"),
            language_chosen=False,
            first_name=bindparam("p_first_name"),
            username=bindparam("p_username"),
            created_at=bindparam("p_now", type_=_CITIZENS.c.created_at.type),
            last_seen_at=bindparam("p_now", type_=_CITIZENS.c.last_seen_at.type),
        )
        .on_conflict_do_nothing(index_elements=["telegram_id"])
        .returning(*_CITIZEN_COLUMNS)
    )


_REGISTER = {
    "sqlite": FastStatement(_register(sqlite.insert)),
    "postgresql": FastStatement(_register(postgresql.insert)),
}
# Names refreshed on contact, and last_seen_at (see LAST_SEEN_RESOLUTION).
_TOUCH = FastStatement(
    update(_CITIZENS)
    .where(_CITIZENS.c.id == bindparam("p_id"))
    .values(
        first_name=bindparam("p_first_name"),
        username=bindparam("p_username"),
        last_seen_at=bindparam("p_now", type_=_CITIZENS.c.last_seen_at.type),
    )
)
_CONSENT = FastStatement(
    update(_CITIZENS)
    .where(_CITIZENS.c.id == bindparam("p_id"), _CITIZENS.c.consented_at.is_(None))
    .values(consented_at=bindparam("p_now", type_=_CITIZENS.c.consented_at.type))
)


def _record_of_columns(row: Any) -> CitizenRecord:
    return CitizenRecord(
        id=row[0],
        telegram_id=row[1],
        pseudonym=row[2],
        language=row[3],
        language_chosen=row[4],
        first_name=row[5],
        username=row[6],
        timezone=row[7],
        consented_at=row[8],
        created_at=row[9],
        stopped_at=row[10],
        unreachable_at=row[11],
    )


class CitizenRepository:
    """Reads and writes citizens."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def by_telegram_id(self, telegram_id: int) -> CitizenRecord | None:
        """The citizen with this Telegram user id, if known."""
        row = await self._session.scalar(select(Citizen).where(Citizen.telegram_id == telegram_id))
        return None if row is None else _record(row)

    async def by_id(self, citizen_id: int) -> CitizenRecord | None:
        """The citizen with this internal id, if any."""
        known = _known(self._session).get(citizen_id)
        if known is not None:
            return known
        row = await self._session.get(Citizen, citizen_id)
        return None if row is None else _record(row)

    async def ensure(
        self,
        *,
        telegram_id: int,
        language: str,
        first_name: str | None,
        username: str | None,
        now: datetime,
    ) -> tuple[CitizenRecord, bool]:
        """Return the citizen for this Telegram user, creating them on first contact.

        The second value is True when the citizen was created now. Names are
        refreshed on every contact; the language only until the citizen chooses one.
        A citizen marked unreachable is reachable again: they wrote to the bot, so it
        may write back (a first /start after a message the bot could not deliver, or
        an unblock whose update was lost).
        """
        # The open dialog session comes with the same query: nearly every update of a
        # citizen reads it next, and this saves that statement.
        ahead = self._session.info.pop(_READ_AHEAD, None)
        if ahead is not None and ahead[0] == telegram_id:
            found = ahead[1] if ahead[1][0] is not None else None
        else:
            found = (
                await _ENSURE_LOOKUP.execute(self._session, {"telegram_id": telegram_id})
            ).first()
        if found is not None:
            citizen = _record_of_columns(found)
            remember(self._session, citizen.id, record_of(found[len(_CITIZEN_COLUMNS) :]))
            last_seen_at, names = found[len(_CITIZEN_COLUMNS) - 1], (first_name, username)
            if now - last_seen_at > LAST_SEEN_RESOLUTION or names != (
                citizen.first_name,
                citizen.username,
            ):
                await _TOUCH.execute(
                    self._session,
                    {
                        "p_id": citizen.id,
                        "p_first_name": first_name,
                        "p_username": username,
                        "p_now": now,
                    },
                )
                citizen = dataclasses.replace(citizen, first_name=first_name, username=username)
            if citizen.unreachable_at is not None:
                await self.set_unreachable(telegram_id, None)
                citizen = dataclasses.replace(citizen, unreachable_at=None)
            _known(self._session)[citizen.id] = citizen
            return citizen, False
        inserted = (
            await _REGISTER[dialect_name(self._session)].execute(
                self._session,
                {
                    "p_telegram_id": telegram_id,
                    "p_pseudonym": new_pseudonym(),
                    "p_language": language,
                    "p_first_name": first_name,
                    "p_username": username,
                    "p_now": now,
                },
            )
        ).first()
        if inserted is not None:
            created = _record_of_columns(inserted)
            remember(self._session, created.id, None)
            _known(self._session)[created.id] = created
            return created, True
        existing = await self._session.scalar(
            select(Citizen).where(Citizen.telegram_id == telegram_id)
        )
        assert existing is not None
        return _record(existing), False

    async def record_consent(self, citizen_id: int, now: datetime) -> None:
        """Note when the citizen accepted the terms (kept from the first time)."""
        _forget(self._session)
        await _CONSENT.execute(self._session, {"p_id": citizen_id, "p_now": now})

    async def set_language(self, citizen_id: int, language: str) -> None:
        """Remember the language the citizen chose."""
        _forget(self._session)
        await self._session.execute(
            update(Citizen)
            .where(Citizen.id == citizen_id)
            .values(language=language, language_chosen=True)
        )

    async def set_stopped(self, citizen_id: int, at: datetime | None) -> None:
        """Stop (``at`` given) or resume (``None``) proactive messages to the citizen."""
        _forget(self._session)
        await self._session.execute(
            update(Citizen).where(Citizen.id == citizen_id).values(stopped_at=at)
        )

    async def set_unreachable(self, telegram_id: int, at: datetime | None) -> None:
        """Record that the citizen blocked the bot (``at``) or came back (``None``)."""
        _forget(self._session)
        await self._session.execute(
            update(Citizen).where(Citizen.telegram_id == telegram_id).values(unreachable_at=at)
        )

    async def export(self, citizen_id: int) -> dict[str, object]:
        """Everything the citizens table holds about one citizen, JSON-able."""
        row = await self._session.get(Citizen, citizen_id)
        if row is None:
            return {}
        return {
            "telegram_id": row.telegram_id,
            "pseudonym": row.pseudonym,
            "first_name": row.first_name,
            "username": row.username,
            "language": row.language,
            "timezone": row.timezone,
            "consented_at": row.consented_at.isoformat() if row.consented_at else None,
            "created_at": row.created_at.isoformat(),
            "last_seen_at": row.last_seen_at.isoformat(),
            "stopped_at": row.stopped_at.isoformat() if row.stopped_at else None,
        }

    async def delete(self, citizen_id: int) -> None:
        """Erase the citizen's row (what referred to it is detached or removed by the schema)."""
        _forget(self._session)
        row = await self._session.get(Citizen, citizen_id)
        if row is not None:
            await self._session.delete(row)
            await self._session.flush()
            remember(self._session, citizen_id, None)

    async def by_username(self, username: str) -> CitizenRecord | None:
        """The citizen with this Telegram @username (case-insensitive), if known."""
        row = await self._session.scalar(
            select(Citizen).where(func.lower(Citizen.username) == username.lstrip("@").lower())
        )
        return None if row is None else _record(row)
