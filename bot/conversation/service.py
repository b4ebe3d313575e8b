"""The conversation use case: start, continue, cancel a citizen's flow.

The engine decides; this runs its calls inside the update's transaction and saves
the session state with every change, so a crash or a deploy loses nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import Clock
from bot.conversation.calls import CallContext, CallRunner
from bot.conversation.catalog import FlowCatalog, PublishedFlow
from bot.i18n import Translator
from dialogs import (
    Context,
    Engine,
    Flow,
    Input,
    OutMessage,
    Result,
    SessionState,
    Status,
)
from storage.db import UnitOfWork
from storage.records import CitizenRecord, SessionRecord

# The session's JSON state holds the engine's state and, beside it, this host flag:
# an administrator walking through a draft, whose actions are described, not done.
PREVIEW_KEY = "host_preview"

# A flow that calls and calls without waiting is a bug; stop it rather than spin.
MAX_CALLS_PER_INPUT = 20
# An idle conversation gets one reminder, halfway to its expiry but within half a day.
MAX_NUDGE_DELAY = timedelta(hours=12)


@dataclass(slots=True)
class Turn:
    """What one citizen input produced."""

    messages: list[OutMessage] = field(default_factory=list)
    notices: list[tuple[int, str]] = field(default_factory=list)
    status: Status | None = None
    flow_id: str | None = None
    preview: bool = False

    @property
    def ended(self) -> bool:
        """The conversation finished or was cancelled with this input."""
        return self.status in (Status.FINISHED, Status.CANCELLED)


def profile_of(citizen: CitizenRecord) -> dict[str, Any]:
    """The citizen fields flows may read (``profile.first_name`` ...)."""
    return {
        "first_name": citizen.first_name or "",
        "last_name": "",
        "username": citizen.username or "",
        "language": citizen.language,
    }


class Conversations:
    """Runs flows for citizens, one open session each."""

    def __init__(
        self,
        *,
        engine: Engine,
        catalog: FlowCatalog,
        calls: CallRunner,
        clock: Clock,
        translator: Translator,
        timezone: ZoneInfo,
    ) -> None:
        self.engine = engine
        self.catalog = catalog
        self.calls = calls
        self.clock = clock
        self.translator = translator
        self.timezone = timezone

    def context(self, citizen: CitizenRecord, *, preview: bool = False) -> Context:
        """The engine context for this citizen now, in their time zone."""
        zone = self.timezone
        if citizen.timezone:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                zone = ZoneInfo(citizen.timezone)
        return Context(
            language=citizen.language,
            now=self.clock.now().astimezone(zone),
            profile=profile_of(citizen),
            preview=preview,
        )

    async def open_session(self, uow: UnitOfWork, citizen: CitizenRecord) -> SessionRecord | None:
        """The citizen's open session, if any."""
        return await uow.repos.sessions.get(citizen.id)

    async def published(self, uow: UnitOfWork) -> dict[str, PublishedFlow]:
        """The flows citizens can start now."""
        return await self.catalog.published(uow)

    async def start(
        self,
        uow: UnitOfWork,
        citizen: CitizenRecord,
        flow_id: str,
        *,
        prefill: Mapping[str, Any] | None = None,
    ) -> Turn:
        """Begin ``flow_id`` (replacing any open session: the caller asked first)."""
        published = (await self.catalog.published(uow)).get(flow_id)
        if published is None:
            raise LookupError(f"no published flow {flow_id!r}")
        context = self.context(citizen)
        result = self.engine.start(published.flow, context, prefill=prefill)
        return await self._advance(
            uow, citizen, published.flow, published.revision_id, result, context
        )

    async def start_preview(
        self, uow: UnitOfWork, citizen: CitizenRecord, revision_id: int
    ) -> Turn:
        """Walk an administrator through any revision (a draft) with actions only described.

        It replaces their open session; /cancel ends it like any conversation.
        """
        flow = await self.catalog.revision(uow, revision_id)
        context = self.context(citizen, preview=True)
        result = self.engine.start(flow, context)
        return await self._advance(uow, citizen, flow, revision_id, result, context)

    async def handle(self, uow: UnitOfWork, citizen: CitizenRecord, item: Input) -> Turn | None:
        """Feed an input to the open session; None when there is none."""
        session = await uow.repos.sessions.get(citizen.id)
        if session is None:
            return None
        flow = await self.catalog.revision(uow, session.revision_id)
        state, preview = split_state(session.state)
        context = self.context(citizen, preview=preview)
        result = self.engine.handle(flow, state, item, context)
        return await self._advance(uow, citizen, flow, session.revision_id, result, context)

    async def reprompt(
        self, uow: UnitOfWork, citizen: CitizenRecord, *, nudge: bool = False
    ) -> Turn | None:
        """Ask the current question again (a reminder, or after a confusing detour)."""
        session = await uow.repos.sessions.get(citizen.id)
        if session is None:
            return None
        flow = await self.catalog.revision(uow, session.revision_id)
        state, preview = split_state(session.state)
        context = self.context(citizen, preview=preview)
        result = self.engine.reprompt(flow, state, context, nudge=nudge)
        return Turn(
            messages=list(result.messages), status=result.status, flow_id=flow.id, preview=preview
        )

    async def _advance(
        self,
        uow: UnitOfWork,
        citizen: CitizenRecord,
        flow: Flow,
        revision_id: int,
        result: Result,
        context: Context,
    ) -> Turn:
        turn = Turn(flow_id=flow.id, preview=context.preview)
        turn.messages.extend(result.messages)
        changed = result.changed
        calls = 0
        while result.status is Status.CALLING and result.call is not None:
            calls += 1
            if calls > MAX_CALLS_PER_INPUT:
                raise RuntimeError(f"flow {flow.id!r} made more than {MAX_CALLS_PER_INPUT} calls")
            call_context = CallContext(
                uow=uow,
                citizen=citizen,
                language=context.language,
                now=context.now,
                translator=self.translator,
                preview=context.preview,
            )
            output = await self.calls.run(result.call, call_context)
            turn.notices.extend(call_context.notices)
            turn.messages.extend(OutMessage(text) for text in call_context.described)
            result = self.engine.resume(flow, result.state, output, context)
            turn.messages.extend(result.messages)
            changed = True
        turn.status = result.status
        if result.status in (Status.FINISHED, Status.CANCELLED):
            await uow.repos.sessions.end(citizen.id)
            if context.preview:
                ended = self.translator.text(context.language, "preview.ended")
                turn.messages.append(OutMessage(ended))
        elif changed:
            state = result.state.to_json()
            if context.preview:
                state[PREVIEW_KEY] = True
            await uow.repos.sessions.save(
                citizen.id,
                flow_id=flow.id,
                revision_id=revision_id,
                state=state,
                now=context.now,
                expires_at=context.now + flow.expires_after,
                nudge_at=context.now + min(flow.expires_after / 2, MAX_NUDGE_DELAY),
            )
        return turn


def split_state(stored: Mapping[str, Any]) -> tuple[SessionState, bool]:
    """The engine's state and the preview flag, from a session's stored JSON."""
    data = dict(stored)
    preview = bool(data.pop(PREVIEW_KEY, False))
    return SessionState.from_json(data), preview
