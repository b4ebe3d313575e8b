"""Flow revisions as the bot uses them: the published set, and any revision by id.

Built-in flows are stored as revisions on start-up (revision 1 on a fresh database;
a newer built-in file replaces the published revision of a flow no administrator
ever edited). Parsed
flows are cached per revision: revisions are immutable.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from dialogs import CallRegistry, Flow, FlowError, load_flow
from storage.db import UnitOfWork

SYSTEM_AUTHOR = "system"
PUBLISHED_CACHE_SECONDS = 5.0


def checksum(source: str) -> str:
    """A stable fingerprint of a flow's source."""
    return hashlib.sha256(source.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PublishedFlow:
    """A published flow and the revision it comes from."""

    revision_id: int
    flow: Flow


class FlowCatalog:
    """Loads, caches and looks up flow revisions."""

    def __init__(self, registry: CallRegistry, languages: Sequence[str]) -> None:
        self.registry = registry
        self.languages = tuple(languages)
        self._parsed: dict[int, Flow] = {}
        self._published: dict[str, PublishedFlow] = {}
        self._published_at = float("-inf")

    def parse(self, source: str, *, filename: str) -> Flow:
        """Validate a flow source (raises FlowError with every problem)."""
        return load_flow(
            source, filename=filename, languages=self.languages, registry=self.registry
        )

    @staticmethod
    def builtin_sources() -> dict[str, str]:
        """The YAML files shipped in ``dialogs/flows``, by file name."""
        folder = resources.files("dialogs").joinpath("flows")
        return {
            entry.name: entry.read_text(encoding="utf-8")
            for entry in sorted(folder.iterdir(), key=lambda item: item.name)
            if entry.name.endswith(".yaml")
        }

    async def sync_builtin(self, uow: UnitOfWork, now: datetime) -> list[str]:
        """Store the shipped flows as revisions where needed; returns the flows updated."""
        problems = []
        updated = []
        for name, source in self.builtin_sources().items():
            try:
                flow = self.parse(source, filename=f"dialogs/flows/{name}")
            except FlowError as error:
                problems.extend(error.problems)
                continue
            published = await uow.repos.flows.published(flow.id)
            fingerprint = checksum(source)
            if published is not None and published.checksum == fingerprint:
                continue
            # Once an administrator stored a revision (and maybe rolled back to a
            # shipped one), what is published is their choice: a deploy keeps it.
            revisions = await uow.repos.flows.revisions(flow.id)
            if any(revision.author != SYSTEM_AUTHOR for revision in revisions):
                continue
            revision = await uow.repos.flows.add(
                flow_id=flow.id, source=source, checksum=fingerprint, author=SYSTEM_AUTHOR, now=now
            )
            await uow.repos.flows.publish(revision.id)
            self._parsed[revision.id] = flow
            updated.append(flow.id)
        if problems:
            raise FlowError(problems)
        self._published_at = float("-inf")
        return updated

    async def revision(self, uow: UnitOfWork, revision_id: int) -> Flow:
        """The flow of a stored revision (parsed once)."""
        flow = self._parsed.get(revision_id)
        if flow is None:
            record = await uow.repos.flows.by_id(revision_id)
            if record is None:
                raise LookupError(f"flow revision {revision_id} does not exist")
            flow = self.parse(record.source, filename=f"{record.flow_id}@{record.number}")
            self._parsed[revision_id] = flow
        return flow

    async def published(self, uow: UnitOfWork) -> dict[str, PublishedFlow]:
        """The published flows by id (re-read every few seconds: other instances publish too)."""
        if time.monotonic() - self._published_at < PUBLISHED_CACHE_SECONDS:
            return self._published
        published = {}
        for record in await uow.repos.flows.all_published():
            flow = self._parsed.get(record.id)
            if flow is None:
                flow = self.parse(record.source, filename=f"{record.flow_id}@{record.number}")
                self._parsed[record.id] = flow
            published[record.flow_id] = PublishedFlow(record.id, flow)
        self._published = published
        self._published_at = time.monotonic()
        return published

    def invalidate(self) -> None:
        """Forget the published set (after a publish or a rollback)."""
        self._published_at = float("-inf")
