"""The commands Telegram lists in its menu, and /help's staff sections.

Everyone sees the published flows' commands, then the citizens' own. A staff member's
chat gets a menu of its own (Telegram's chat scope) that adds the commands their
role allows, so a manager finds /reports where a citizen finds /status.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiogram.types import BotCommand

from bot.conversation.catalog import PublishedFlow
from bot.i18n import Translator
from storage.repositories.staff import StaffRoles

# The citizens' commands, after the flows'.
COMMANDS = ("status", "myshifts", "mydata", "forget", "language", "cancel", "stop", "help", "start")
# What staff are offered, in this order: every staff member, then administrators.
MANAGER_MENU = ("reports", "report", "digest", "subscribe", "export", "shifts")
ADMIN_MENU = (
    "broadcast",
    "yousaid",
    "moveshift",
    "grant",
    "revoke",
    "invite",
    "audit",
    "flows",
    "config",
)


def staff_commands(roles: StaffRoles) -> list[tuple[str, tuple[str, ...]]]:
    """The staff commands ``roles`` allow, by section (/help's title key, names)."""
    sections: list[tuple[str, tuple[str, ...]]] = []
    if roles.is_staff:
        sections.append(("help.staff", MANAGER_MENU))
    if roles.admin:
        sections.append(("help.admin", ADMIN_MENU))
    return sections


def staff_help(translator: Translator, language: str, roles: StaffRoles) -> list[str]:
    """/help's sections for the staff commands ``roles`` may use (none for citizens)."""
    return [
        "\n".join(
            [
                translator.text(language, title),
                *(f"/{name} — {translator.text(language, f'command.{name}')}" for name in names),
            ]
        )
        for title, names in staff_commands(roles)
    ]


def command_menu(
    published: Mapping[str, PublishedFlow],
    translator: Translator,
    language: str,
    roles: StaffRoles,
) -> list[BotCommand]:
    """The menu for ``roles`` (citizens: no roles): the flows' first commands in their
    order, the citizens' commands, then the staff commands not already listed."""
    flows = sorted((entry.flow for entry in published.values()), key=lambda f: f.triggers.order)
    listed = [
        BotCommand(command=command, description=flow.title(language))
        for flow in flows
        for command in flow.triggers.commands[:1]
    ]
    names = [*COMMANDS, *(name for _, section in staff_commands(roles) for name in section)]
    taken = {entry.command for entry in listed}
    listed += [
        BotCommand(command=name, description=translator.text(language, f"command.{name}"))
        for name in names
        if name not in taken
    ]
    return listed
