"""Public value types shared by the emulator server and its Python client.

They stay free of aiohttp and server state so that `client.py` can import them
without pulling in the emulator itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


def _known_fields(cls: type[Any], raw: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in raw.items() if key in names}


@dataclass(frozen=True, slots=True)
class Persona:
    """A Telegram user the playground offers to act as (a citizen, a manager, ...)."""

    user_id: int
    first_name: str
    language_code: str = "en"
    label: str = ""
    last_name: str | None = None
    username: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return the persona as the JSON object of `GET /emulator/personas`."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Persona:
        """Build a persona from its JSON object, ignoring unknown keys."""
        return cls(**_known_fields(cls, raw))


DEFAULT_PERSONAS: tuple[Persona, ...] = (
    Persona(100001, "Alice", "en", "Citizen (English)", last_name="Walker", username="alice"),
    Persona(100002, "Camille", "fr", "Citoyenne (français)", last_name="Martin"),
    Persona(100003, "Sam", "en", "Service manager", last_name="Okafor", username="sam_manager"),
    Persona(100004, "Dana", "en", "Administrator", last_name="Kowalski", username="dana_admin"),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimits:
    """Telegram's flood limits, as sliding windows.

    `paid_broadcast_per_second` replaces `per_bot_per_second` for sends that pass
    `allow_paid_broadcast=true`, or for every send when `paid_broadcast` is set
    (a bot that enabled paid broadcasts for all its traffic).
    """

    per_bot_per_second: int = 30
    per_private_chat_per_second: int = 1
    per_group_chat_per_minute: int = 20
    paid_broadcast_per_second: int = 1000
    paid_broadcast: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return the limits as a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> RateLimits:
        """Build limits from a JSON object; missing keys keep Telegram's defaults."""
        return cls(**_known_fields(cls, raw))


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """Makes the next `times` matching Bot API calls misbehave.

    A rule matches on the method name (case-insensitive, "*" for any) and, when
    `chat_id` is set, on the call's chat. It may hold the response for `delay`
    seconds first (to look like a slow or timed-out server), then either drop the
    connection or answer with `error_code`. With neither, the call is only slowed
    down. `after_effect=True` lets the call take effect before the failure is
    reported: the message is sent but the bot sees an error — the case that makes
    naive retries send duplicates.
    """

    method: str = "*"
    chat_id: int | None = None
    error_code: int | None = None
    description: str | None = None
    retry_after: int | None = None
    times: int = 1
    delay: float = 0.0
    drop_connection: bool = False
    after_effect: bool = False
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the rule as a JSON object."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> FaultRule:
        """Build a rule from a JSON object, ignoring unknown keys."""
        return cls(**_known_fields(cls, raw))
