"""Reference data kept in process: the catalogue (services, categories) and the areas.

The report flow reads them on nearly every question that shows them and when a report
is created, and they change only when an administrator imports or edits them. So
they are read once and kept, per :class:`~storage.db.Database`:

* a unit of work that wrote them (the repositories mark it) reads them from the
  database, never from here, and when it commits the kept copy is dropped, so this
  process sees an edit at once;
* another process (an instance behind the same load balancer, the ``citizenbot``
  command line on the same database) cannot tell this one, so a kept copy is also
  dropped after :data:`TTL_SECONDS`: there, an edit shows within that time.

A copy read while a change commits is not kept: each read notes the generation it
started in, and an invalidation starts a new one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

TTL_SECONDS = 30.0
CATALOG, AREAS = "catalog", "areas"
# In a session's ``info``: the kinds of reference data its transaction wrote.
_CHANGED = "reference_data_changed"

T = TypeVar("T")


@dataclass(slots=True)
class _Entry:
    value: Any
    expires: float


@dataclass(slots=True)
class ReferenceCache:
    """Reference data by kind, each copy kept for ``ttl`` seconds or until invalidated."""

    ttl: float = TTL_SECONDS
    clock: Callable[[], float] = time.monotonic
    generation: int = 0
    _entries: dict[str, _Entry] = field(default_factory=dict)

    def get(self, kind: str) -> Any | None:
        """The kept copy of ``kind``, if there is a fresh one."""
        entry = self._entries.get(kind)
        if entry is None or entry.expires <= self.clock():
            return None
        return entry.value

    def put(self, kind: str, value: Any, *, generation: int) -> None:
        """Keep ``value``, read in ``generation``, unless something changed since."""
        if generation == self.generation:
            self._entries[kind] = _Entry(value, self.clock() + self.ttl)

    def invalidate(self, kinds: Iterable[str] | None = None) -> None:
        """Drop the kept copies of ``kinds`` (all by default)."""
        self.generation += 1
        if kinds is None:
            self._entries.clear()
            return
        for kind in kinds:
            self._entries.pop(kind, None)


def mark_changed(session: AsyncSession, kind: str) -> None:
    """Note that this transaction writes reference data of ``kind``."""
    changed: set[str] = session.info.setdefault(_CHANGED, set())
    changed.add(kind)


def changed_in(session: AsyncSession) -> set[str]:
    """The kinds of reference data this transaction wrote."""
    changed: set[str] = session.info.get(_CHANGED, set())
    return changed


async def cached(
    cache: ReferenceCache | None,
    session: AsyncSession,
    kind: str,
    load: Callable[[], Awaitable[T]],
) -> T:
    """The kept copy of ``kind``, or ``await load()`` (kept when that is safe)."""
    if cache is None or kind in changed_in(session):
        return await load()
    kept = cache.get(kind)
    if kept is not None:
        return cast(T, kept)
    generation = cache.generation
    value = await load()
    cache.put(kind, value, generation=generation)
    return value
