"""Granting and revoking staff roles, invitation links, and the audit trail."""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.db import UnitOfWork
from storage.records import CitizenRecord
from storage.repositories.staff import ADMIN, MANAGER, InviteRecord

INVITE_PREFIX = "inv_"
INVITE_LIFETIME = timedelta(days=7)


def actor_of(citizen: CitizenRecord) -> str:
    """How a staff member appears in the audit log (a pseudonym, never a Telegram id)."""
    return f"staff:{citizen.pseudonym}"


class GrantResult(enum.Enum):
    """What a grant did."""

    GRANTED = "granted"
    ALREADY = "already"
    UNKNOWN_PERSON = "unknown_person"
    UNKNOWN_SERVICE = "unknown_service"


@dataclass(frozen=True, slots=True)
class Grant:
    """The outcome of a grant and who it concerned."""

    result: GrantResult
    person: CitizenRecord | None = None


async def find_person(
    uow: UnitOfWork, reference: str, *, language: str, now: datetime
) -> CitizenRecord | None:
    """A person by Telegram user id (known or not yet) or by the @username of a known one."""
    reference = reference.strip()
    if reference.lstrip("-").isdigit():
        known = await uow.repos.citizens.by_telegram_id(int(reference))
        if known is not None:  # ensure() would overwrite their name and username
            return known
        person, _ = await uow.repos.citizens.ensure(
            telegram_id=int(reference), language=language, first_name=None, username=None, now=now
        )
        return person
    if reference.startswith("@") or reference.replace("_", "").isalnum():
        return await uow.repos.citizens.by_username(reference)
    return None


async def grant_role(
    uow: UnitOfWork,
    actor: CitizenRecord,
    person_reference: str,
    role: str,
    service_code: str | None,
    *,
    now: datetime,
) -> Grant:
    """Give ``role`` (a manager's names a service) and record it in the audit log."""
    person = await find_person(uow, person_reference, language=actor.language, now=now)
    if person is None:
        return Grant(GrantResult.UNKNOWN_PERSON)
    service_id = None
    if role == MANAGER:
        service = await uow.repos.catalog.service_by_code(service_code or "")
        if service is None:
            return Grant(GrantResult.UNKNOWN_SERVICE, person)
        service_id = service.id
    granted = await uow.repos.staff.grant(
        person.id, role, service_id=service_id, by=actor_of(actor), now=now
    )
    if not granted:
        return Grant(GrantResult.ALREADY, person)
    await uow.repos.staff.audit(
        actor=actor_of(actor),
        action="role.grant",
        subject=person.pseudonym,
        details={"role": role, "service": service_code},
        now=now,
    )
    return Grant(GrantResult.GRANTED, person)


async def revoke_roles(
    uow: UnitOfWork, actor: CitizenRecord, person_reference: str, *, now: datetime
) -> tuple[CitizenRecord | None, int]:
    """Take every staff role from a person; returns the person and how many roles went."""
    person = await find_person(uow, person_reference, language=actor.language, now=now)
    if person is None:
        return None, 0
    removed = await uow.repos.staff.revoke(person.id)
    if removed:
        await uow.repos.staff.audit(
            actor=actor_of(actor),
            action="role.revoke",
            subject=person.pseudonym,
            details={"removed": removed},
            now=now,
        )
    return person, removed


async def create_invite(
    uow: UnitOfWork,
    actor: CitizenRecord,
    role: str,
    service_codes: list[str],
    *,
    now: datetime,
) -> str | None:
    """A one-time code granting ``role``; None when a named service does not exist."""
    service_ids = []
    for code in service_codes:
        service = await uow.repos.catalog.service_by_code(code)
        if service is None:
            return None
        service_ids.append(service.id)
    if role == MANAGER and not service_ids:
        return None
    code = INVITE_PREFIX + secrets.token_urlsafe(18)
    await uow.repos.staff.create_invite(
        code=code,
        role=role,
        service_ids=service_ids,
        by=actor_of(actor),
        now=now,
        expires_at=now + INVITE_LIFETIME,
    )
    await uow.repos.staff.audit(
        actor=actor_of(actor),
        action="invite.create",
        subject=None,
        details={"role": role, "services": service_codes},
        now=now,
    )
    return code


async def accept_invite(
    uow: UnitOfWork, citizen: CitizenRecord, code: str, *, now: datetime
) -> InviteRecord | None:
    """Spend an invitation and grant its roles; None if unknown, used or expired."""
    invite = await uow.repos.staff.use_invite(code, citizen.id, now)
    if invite is None:
        return None
    by = f"invite:{code[len(INVITE_PREFIX) : len(INVITE_PREFIX) + 6]}"
    if invite.role == ADMIN:
        await uow.repos.staff.grant(citizen.id, ADMIN, service_id=None, by=by, now=now)
    for service_id in invite.service_ids:
        await uow.repos.staff.grant(citizen.id, MANAGER, service_id=service_id, by=by, now=now)
    await uow.repos.staff.audit(
        actor=actor_of(citizen),
        action="invite.accept",
        subject=citizen.pseudonym,
        details={"role": invite.role},
        now=now,
    )
    return invite
