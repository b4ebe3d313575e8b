"""Staff roles, invitation links and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Citizen, Invite, StaffRole
from storage.repositories._dialect import insert_ignoring_conflicts
from storage.repositories._fast import FastStatement

ADMIN, MANAGER = "admin", "manager"


@dataclass(frozen=True, slots=True)
class StaffRoles:
    """What a person may do: administer, and/or manage some services."""

    admin: bool
    service_ids: frozenset[int]

    @property
    def is_staff(self) -> bool:
        """An administrator or the manager of at least one service."""
        return self.admin or bool(self.service_ids)


NO_ROLES = StaffRoles(admin=False, service_ids=frozenset())


@dataclass(frozen=True, slots=True, kw_only=True)
class StaffMember:
    """A manager or administrator as notifications need them."""

    citizen_id: int
    telegram_id: int
    language: str
    pseudonym: str


# Built once: every new report looks up its service's managers.
_MANAGERS_OF = FastStatement(
    select(Citizen.id, Citizen.telegram_id, Citizen.language, Citizen.pseudonym)
    .join(StaffRole, StaffRole.citizen_id == Citizen.id)
    .where(
        StaffRole.role == MANAGER,
        StaffRole.service_id == bindparam("p_service_id"),
        Citizen.telegram_id.is_not(None),
        Citizen.unreachable_at.is_(None),
    )
    .order_by(Citizen.id)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteRecord:
    """An invitation link's grant."""

    code: str
    role: str
    service_ids: tuple[int, ...]
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord:
    """One line of the audit log."""

    at: datetime
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]


class StaffRepository:
    """Reads and writes roles, invites and the audit log."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def roles_of(self, citizen_id: int) -> StaffRoles:
        """The roles a citizen holds."""
        result = await self._session.execute(
            select(StaffRole.role, StaffRole.service_id).where(StaffRole.citizen_id == citizen_id)
        )
        rows = result.all()
        if not rows:
            return NO_ROLES
        return StaffRoles(
            admin=any(row[0] == ADMIN for row in rows),
            service_ids=frozenset(
                row[1] for row in rows if row[0] == MANAGER and row[1] is not None
            ),
        )

    async def member_ids(self) -> list[int]:
        """Everyone who holds a role, by citizen id."""
        result = await self._session.scalars(
            select(StaffRole.citizen_id).distinct().order_by(StaffRole.citizen_id)
        )
        return list(result.all())

    async def grant(
        self, citizen_id: int, role: str, *, service_id: int | None, by: str, now: datetime
    ) -> bool:
        """Give a role (a manager role names its service); False if already held."""
        existing = await self._session.scalar(
            select(StaffRole.id).where(
                StaffRole.citizen_id == citizen_id,
                StaffRole.role == role,
                StaffRole.service_id.is_(None)
                if service_id is None
                else StaffRole.service_id == service_id,
            )
        )
        if existing is not None:
            return False
        result = await self._session.execute(
            insert_ignoring_conflicts(
                self._session, StaffRole, ["citizen_id", "role", "service_id"]
            ).values(
                citizen_id=citizen_id,
                role=role,
                service_id=service_id,
                granted_by=by,
                granted_at=now,
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def revoke(self, citizen_id: int, role: str | None = None) -> int:
        """Take roles away (all of them without ``role``); returns how many."""
        statement = delete(StaffRole).where(StaffRole.citizen_id == citizen_id)
        if role is not None:
            statement = statement.where(StaffRole.role == role)
        result = await self._session.execute(statement)
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def managers_of(self, service_id: int) -> list[StaffMember]:
        """The managers of a service who can be reached in Telegram."""
        result = await _MANAGERS_OF.execute(self._session, {"p_service_id": service_id})
        return [
            StaffMember(citizen_id=row[0], telegram_id=row[1], language=row[2], pseudonym=row[3])
            for row in result.all()
            if row[1] is not None
        ]

    async def create_invite(
        self,
        *,
        code: str,
        role: str,
        service_ids: list[int],
        by: str,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """Store a one-time invitation."""
        self._session.add(
            Invite(
                code=code,
                role=role,
                service_ids={"items": list(service_ids)},
                created_by=by,
                created_at=now,
                expires_at=expires_at,
            )
        )
        await self._session.flush()

    async def use_invite(self, code: str, citizen_id: int, now: datetime) -> InviteRecord | None:
        """Spend an invitation (once, before it expires); None if it cannot be used."""
        result = await self._session.execute(
            update(Invite)
            .where(Invite.code == code, Invite.used_at.is_(None), Invite.expires_at > now)
            .values(used_by=citizen_id, used_at=now)
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        row = (
            await self._session.execute(
                select(Invite.code, Invite.role, Invite.service_ids, Invite.expires_at).where(
                    Invite.code == code
                )
            )
        ).one()
        return InviteRecord(
            code=row[0],
            role=row[1],
            service_ids=tuple(int(item) for item in row[2].get("items", [])),
            expires_at=row[3],
        )

    async def audit(
        self,
        *,
        actor: str,
        action: str,
        subject: str | None,
        details: dict[str, Any] | None = None,
        now: datetime,
    ) -> None:
        """Record a staff action."""
        self._session.add(
            AuditEntry(at=now, actor=actor, action=action, subject=subject, details=details or {})
        )

    async def audit_entries(
        self, *, limit: int = 20, action: str | None = None, actor: str | None = None
    ) -> list[AuditRecord]:
        """The latest audit entries, newest first, optionally filtered."""
        statement = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        if action:
            statement = statement.where(AuditEntry.action.startswith(action))
        if actor:
            statement = statement.where(AuditEntry.actor == actor)
        rows = await self._session.scalars(statement.limit(limit))
        return [
            AuditRecord(
                at=row.at,
                actor=row.actor,
                action=row.action,
                subject=row.subject,
                details=dict(row.details),
            )
            for row in rows
        ]
