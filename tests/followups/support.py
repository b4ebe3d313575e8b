"""Helpers for follow-up tests: what the outbox holds, delivering it, making subjects.

The outbox sender is another piece of work: these tests assert on the outbox rows
(what would be sent) and, where a citizen must answer, deliver them with
:func:`deliver_outbox`, which takes each pending row the way a sender would (a
conditional update first), so it never sends a row twice even beside a real sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiogram.methods import SendMessage, TelegramMethod
from sqlalchemy import select, update

from bot.app import Runtime
from bot.conversation.calls import CallContext, volunteer_signup
from bot.outbox import method_from_payload
from dialogs.registry import VolunteerSignupParams
from storage.db import Database
from storage.models import Citizen, FollowUp, OutboxMessage
from storage.records import CitizenRecord
from storage.repositories.followups import FollowUpRecord
from storage.repositories.volunteering import OpportunityRecord
from tests.support.citizen import Citizen as ChatCitizen


@dataclass(frozen=True, slots=True)
class Queued:
    """An outbox row and the Bot API call it holds."""

    id: int
    chat_id: int
    citizen_id: int | None
    kind: str
    status: str
    not_before: datetime
    idempotency_key: str | None
    method: TelegramMethod[Any]

    @property
    def text(self) -> str:
        """The text of a SendMessage ("" for other calls)."""
        return self.method.text if isinstance(self.method, SendMessage) else ""

    @property
    def buttons(self) -> list[tuple[str, str | None]]:
        """(text, callback data) of its inline buttons."""
        markup = getattr(self.method, "reply_markup", None)
        rows = getattr(markup, "inline_keyboard", None) or []
        return [(button.text, button.callback_data) for row in rows for button in row]


async def queued(
    database: Database, *, kind: str | None = None, chat_id: int | None = None
) -> list[Queued]:
    """Every outbox row (optionally of one kind or chat), oldest first."""
    statement = select(OutboxMessage).order_by(OutboxMessage.id)
    if kind is not None:
        statement = statement.where(OutboxMessage.kind == kind)
    if chat_id is not None:
        statement = statement.where(OutboxMessage.chat_id == chat_id)
    async with database.uow() as uow:
        rows = (await uow.session.scalars(statement)).all()
        return [
            Queued(
                id=row.id,
                chat_id=row.chat_id,
                citizen_id=row.citizen_id,
                kind=row.kind,
                status=row.status,
                not_before=row.not_before,
                idempotency_key=row.idempotency_key,
                method=method_from_payload(row.method, dict(row.payload)),
            )
            for row in rows
        ]


async def deliver_outbox(runtime: Runtime) -> list[Queued]:
    """Send every pending outbox row through the bot, in order; returns what was sent."""
    database = runtime.services.database
    sent = []
    for item in await queued(database):
        if item.status != "pending":
            continue
        async with database.uow() as uow:
            taken = await uow.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == item.id, OutboxMessage.status == "pending")
                .values(status="sent", sent_at=runtime.services.clock.now())
            )
        if not taken.rowcount:  # type: ignore[attr-defined]
            continue
        await runtime.bot(item.method)
        sent.append(item)
    return sent


async def greet(runtime: Runtime, citizen: ChatCitizen) -> CitizenRecord:
    """The citizen says /start (so the chat exists); returns their record."""
    await citizen.send("/start", expect="👋")
    return await record_of(runtime.services.database, citizen.id)


async def record_of(database: Database, telegram_id: int) -> CitizenRecord:
    """The citizen with this Telegram id."""
    async with database.uow() as uow:
        found = await uow.repos.citizens.by_telegram_id(telegram_id)
    assert found is not None
    return found


async def set_timezone(database: Database, citizen_id: int, zone: str) -> None:
    """Give a citizen a time zone of their own."""
    async with database.uow() as uow:
        await uow.session.execute(
            update(Citizen).where(Citizen.id == citizen_id).values(timezone=zone)
        )


async def followups(database: Database, *, rule: str | None = None) -> list[FollowUpRecord]:
    """Every follow-up row (optionally of one rule), by due time."""
    statement = select(FollowUp.id).order_by(FollowUp.due_at, FollowUp.id)
    if rule is not None:
        statement = statement.where(FollowUp.rule == rule)
    async with database.uow() as uow:
        found = []
        for followup_id in list(await uow.session.scalars(statement)):
            row = await uow.repos.followups.by_id(followup_id)
            assert row is not None
            found.append(row)
        return found


async def report_by_flow(citizen: ChatCitizen, description: str = "The lamp is out") -> str:
    """The citizen reports a broken streetlight through the report flow; its reference."""
    # The menu button, not /report: see the report on the staff /report command.
    await citizen.send("📣 Report an issue", expect="What would you like to report")
    await citizen.tap("💡 Street lighting", expect="Where is it")
    await citizen.send("12 Rue Haute", expect="Can you add a photo")
    await citizen.send("Skip ➡️", expect="describe the problem")
    await citizen.send(description, expect="stay anonymous")
    await citizen.tap("No", expect="check your report")
    sent = await citizen.tap("✅ Send the report", expect="Your report number is")
    reference = sent.content.split("Your report number is ")[1].split(".")[0]
    assert reference.startswith("R-")
    return reference


async def add_opportunity(
    database: Database,
    *,
    code: str,
    starts_at: datetime,
    hours: float = 2,
    slots: int = 1,
    place: str = "Central Park, main gate",
) -> OpportunityRecord:
    """A scheduled shift."""
    async with database.uow() as uow:
        return await uow.repos.volunteering.add_opportunity(
            code=code,
            titles={"en": "Park clean-up", "fr": "Nettoyage du parc"},
            descriptions={"en": "Tidy up", "fr": "Ranger"},
            skills=["clean_up"],
            area="centre",
            place=place,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(hours=hours),
            slots=slots,
        )


async def sign_up(runtime: Runtime, citizen: CitizenRecord, code: str) -> dict[str, Any]:
    """The volunteer flow's sign-up call, as the flow makes it (hooks included)."""
    services = runtime.services
    async with services.database.uow() as uow:
        context = services.conversations.context(citizen)
        call = CallContext(
            uow=uow,
            citizen=citizen,
            language=context.language,
            now=context.now,
            translator=services.translator,
        )
        return dict(await volunteer_signup(call, VolunteerSignupParams(opportunity=code)))
