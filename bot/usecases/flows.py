"""Managing flow revisions: drafts, diffs, publishing, rollback, discarding.

One implementation for the administrators' chat commands and ``citizenbot flows``.
Revisions are immutable and numbered per flow; publishing moves the published
pointer, so a rollback is the publication of an older revision. A source that does
not load is never stored. Publishing, rolling back and discarding are audited with
who, when, the flow and the revision.

A publication reaches this process at once (the catalog cache is invalidated) and
other processes within ``PUBLISHED_CACHE_SECONDS`` (they re-read the published set).
Conversations already running keep the revision they started on.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime

from bot.conversation.catalog import FlowCatalog, checksum
from dialogs import Flow
from storage.db import UnitOfWork
from storage.records import FlowRevisionRecord

DRAFT_SAVED = "flow.draft"
PUBLISHED = "flow.publish"
ROLLED_BACK = "flow.rollback"
DISCARDED = "flow.discard"


@dataclass(frozen=True, slots=True, kw_only=True)
class Revision:
    """A stored revision, without its source."""

    id: int
    flow_id: str
    number: int
    author: str
    created_at: datetime
    published: bool
    checksum: str


def _revision(record: FlowRevisionRecord) -> Revision:
    return Revision(
        id=record.id,
        flow_id=record.flow_id,
        number=record.number,
        author=record.author,
        created_at=record.created_at,
        published=record.published,
        checksum=record.checksum,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowHistory:
    """A flow's revisions as an administrator sees them.

    ``drafts`` are revisions newer than the published one; ``earlier`` the older
    ones a rollback can go back to. Discarded drafts are in neither. Newest first.
    """

    flow_id: str
    published: Revision | None
    drafts: tuple[Revision, ...]
    earlier: tuple[Revision, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Draft:
    """An uploaded source stored as a revision (or found identical to a stored one)."""

    revision: Revision
    flow: Flow
    created: bool
    published: Revision | None
    diff: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Publication:
    """The outcome of a publish or a rollback."""

    flow_id: str
    revision: Revision
    previous: Revision | None
    action: str
    changed: bool


class FlowManagementError(Exception):
    """A request about flows that cannot be done; the message says why, in English."""


class UnknownFlowError(FlowManagementError):
    """No revision of this flow is stored."""

    def __init__(self, flow_id: str) -> None:
        super().__init__(f"no flow {flow_id!r} is stored")
        self.flow_id = flow_id


class UnknownRevisionError(FlowManagementError):
    """The flow has no revision with this number (or id)."""

    def __init__(self, flow_id: str, number: int) -> None:
        super().__init__(f"flow {flow_id!r} has no revision {number}")
        self.flow_id = flow_id
        self.number = number


class NothingToRollBackError(FlowManagementError):
    """The flow has no earlier revision to go back to."""

    def __init__(self, flow_id: str) -> None:
        super().__init__(f"flow {flow_id!r} has no revision before the published one")
        self.flow_id = flow_id


class NotEarlierError(FlowManagementError):
    """A rollback must go to a revision older than the published one."""

    def __init__(self, flow_id: str, number: int, published: int) -> None:
        super().__init__(
            f"revision {number} of {flow_id!r} is not older than the published"
            f" revision {published}: publish it instead"
        )


class PublishedDiscardError(FlowManagementError):
    """The published revision cannot be discarded."""

    def __init__(self, flow_id: str, number: int) -> None:
        super().__init__(f"revision {number} of {flow_id!r} is published: it cannot be discarded")
        self.flow_id = flow_id
        self.number = number


def unified_diff(old: str, new: str, *, old_name: str, new_name: str) -> str:
    """A unified diff of two sources ("" when they are the same)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
    )
    # A last line without a newline must not glue itself to the next diff line.
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def revision_name(flow_id: str, number: int) -> str:
    """How a revision is named in diffs and messages: ``report@3``."""
    return f"{flow_id}@{number}"


async def flow_history(uow: UnitOfWork, flow_id: str) -> FlowHistory:
    """One flow's published revision, drafts and earlier revisions."""
    records = await uow.repos.flows.revisions(flow_id)
    if not records:
        raise UnknownFlowError(flow_id)
    discarded = await uow.repos.flows.numbers_marked(flow_id, DISCARDED)
    revisions = [_revision(record) for record in records]
    published = next((revision for revision in revisions if revision.published), None)
    floor = published.number if published else 0
    kept = [r for r in revisions if not r.published and r.number not in discarded]
    return FlowHistory(
        flow_id=flow_id,
        published=published,
        drafts=tuple(r for r in kept if r.number > floor),
        earlier=tuple(r for r in kept if r.number < floor),
    )


async def flow_histories(uow: UnitOfWork) -> list[FlowHistory]:
    """Every stored flow's history, by flow id."""
    return [await flow_history(uow, flow_id) for flow_id in await uow.repos.flows.flow_ids()]


async def revision_by_id(uow: UnitOfWork, revision_id: int) -> Revision | None:
    """A revision by its id (buttons carry ids: flow ids can be long)."""
    record = await uow.repos.flows.by_id(revision_id)
    return None if record is None else _revision(record)


async def _record(uow: UnitOfWork, flow_id: str, number: int | None) -> FlowRevisionRecord:
    """A revision by number, or the published one when ``number`` is None."""
    if number is None:
        record = await uow.repos.flows.published(flow_id)
        if record is None:
            if not await uow.repos.flows.revisions(flow_id):
                raise UnknownFlowError(flow_id)
            raise FlowManagementError(f"flow {flow_id!r} has no published revision")
        return record
    record = await uow.repos.flows.by_number(flow_id, number)
    if record is None:
        if not await uow.repos.flows.revisions(flow_id):
            raise UnknownFlowError(flow_id)
        raise UnknownRevisionError(flow_id, number)
    return record


async def revision_source(
    uow: UnitOfWork, flow_id: str, number: int | None = None
) -> tuple[Revision, str]:
    """A revision (the published one by default) and its YAML source."""
    record = await _record(uow, flow_id, number)
    return _revision(record), record.source


async def save_draft(
    uow: UnitOfWork,
    catalog: FlowCatalog,
    source: str,
    *,
    filename: str,
    author: str,
    now: datetime,
) -> Draft:
    """Validate ``source`` and store it as an unpublished revision.

    Raises FlowError (every problem, ``filename:line: message``) and stores nothing
    when it does not load. A source identical to a stored revision is not stored
    twice: that revision is returned with ``created`` False.
    """
    flow = catalog.parse(source, filename=filename)
    fingerprint = checksum(source)
    published = await uow.repos.flows.published(flow.id)
    discarded = await uow.repos.flows.numbers_marked(flow.id, DISCARDED)
    existing = next(
        (
            r
            for r in await uow.repos.flows.revisions(flow.id)
            if r.checksum == fingerprint and r.number not in discarded
        ),
        None,
    )
    created = existing is None
    if existing is None:
        existing = await uow.repos.flows.add(
            flow_id=flow.id, source=source, checksum=fingerprint, author=author, now=now
        )
        await uow.repos.staff.audit(
            actor=author,
            action=DRAFT_SAVED,
            subject=flow.id,
            details={"revision": existing.number},
            now=now,
        )
    old = published.source if published else ""
    old_name = revision_name(flow.id, published.number) if published else "/dev/null"
    diff = unified_diff(
        old, source, old_name=old_name, new_name=revision_name(flow.id, existing.number)
    )
    return Draft(
        revision=_revision(existing),
        flow=flow,
        created=created,
        published=None if published is None else _revision(published),
        diff=diff,
    )


async def publish(
    uow: UnitOfWork,
    catalog: FlowCatalog,
    flow_id: str,
    number: int,
    *,
    actor: str,
    now: datetime,
) -> Publication:
    """Make revision ``number`` the published one; going back in numbers is a rollback.

    The stored source is loaded again first: a revision that no longer loads (the
    call registry changed since) is never published. Raises FlowError then.
    """
    record = await _record(uow, flow_id, number)
    catalog.parse(record.source, filename=revision_name(flow_id, number))
    previous = await uow.repos.flows.published(flow_id)
    rollback = previous is not None and record.number < previous.number
    action = ROLLED_BACK if rollback else PUBLISHED
    changed = previous is None or previous.id != record.id
    if changed:
        await uow.repos.flows.publish(record.id)
        await uow.repos.staff.audit(
            actor=actor,
            action=action,
            subject=flow_id,
            details={
                "revision": record.number,
                "previous": None if previous is None else previous.number,
            },
            now=now,
        )
        catalog.invalidate()
    published = await uow.repos.flows.by_id(record.id)
    assert published is not None
    return Publication(
        flow_id=flow_id,
        revision=_revision(published),
        previous=None if previous is None else _revision(previous),
        action=action,
        changed=changed,
    )


async def rollback(
    uow: UnitOfWork,
    catalog: FlowCatalog,
    flow_id: str,
    number: int | None = None,
    *,
    actor: str,
    now: datetime,
) -> Publication:
    """Publish an older revision: ``number``, or the newest one before the published."""
    history = await flow_history(uow, flow_id)
    current = history.published
    if current is None:
        raise FlowManagementError(f"flow {flow_id!r} has no published revision")
    if number is None:
        if not history.earlier:
            raise NothingToRollBackError(flow_id)
        number = history.earlier[0].number
    elif number >= current.number:
        raise NotEarlierError(flow_id, number, current.number)
    return await publish(uow, catalog, flow_id, number, actor=actor, now=now)


async def discard(
    uow: UnitOfWork, flow_id: str, number: int, *, actor: str, now: datetime
) -> Revision:
    """Set an unpublished revision aside: it leaves the lists, stays stored and auditable."""
    record = await _record(uow, flow_id, number)
    if record.published:
        raise PublishedDiscardError(flow_id, number)
    if number not in await uow.repos.flows.numbers_marked(flow_id, DISCARDED):
        await uow.repos.staff.audit(
            actor=actor, action=DISCARDED, subject=flow_id, details={"revision": number}, now=now
        )
    return _revision(record)


async def diff_against(
    uow: UnitOfWork,
    flow_id: str,
    new_source: str,
    *,
    new_name: str,
    against: int | None = None,
) -> str:
    """A unified diff from a stored revision (the published one by default) to a source."""
    record = await _record(uow, flow_id, against)
    return unified_diff(
        record.source,
        new_source,
        old_name=revision_name(flow_id, record.number),
        new_name=new_name,
    )
