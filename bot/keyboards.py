"""Keyboards built from translated labels and the published flows' menu entries."""

from __future__ import annotations

from collections.abc import Mapping

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.conversation.catalog import PublishedFlow
from bot.i18n import Translator
from dialogs import Flow


def menu_flows(published: Mapping[str, PublishedFlow]) -> list[Flow]:
    """The flows shown in the main menu, in their configured order."""
    flows = [entry.flow for entry in published.values() if entry.flow.triggers.menu]
    return sorted(flows, key=lambda flow: (flow.triggers.order, flow.id))


def main_menu(published: Mapping[str, PublishedFlow], language: str) -> ReplyKeyboardMarkup:
    """The persistent main menu: large buttons that also work on old phones.

    The first entry has a row of its own; the others go two by two.
    """
    labels = [flow.menu_label(language) or flow.id for flow in menu_flows(published)]
    rows = [labels[:1], *(labels[i : i + 2] for i in range(1, len(labels), 2))]
    return ReplyKeyboardMarkup(
        keyboard=[[KeyboardButton(text=label) for label in row] for row in rows if row],
        resize_keyboard=True,
        is_persistent=True,
    )


def flow_for_menu_text(published: Mapping[str, PublishedFlow], text: str) -> str | None:
    """The flow whose menu button (in any language) reads ``text``."""
    for flow in menu_flows(published):
        label = flow.triggers.menu_label
        if label is not None and text.strip() in label.root.values():
            return flow.id
    return None


def flow_for_command(published: Mapping[str, PublishedFlow], command: str) -> str | None:
    """The flow started by ``/command``."""
    wanted = command.lower()
    for flow_id, entry in published.items():
        if wanted in (c.lower() for c in entry.flow.triggers.commands):
            return flow_id
    return None


def flow_for_keywords(
    published: Mapping[str, PublishedFlow], text: str, language: str
) -> str | None:
    """The first flow (in menu order) one of whose keywords ``text`` contains."""
    ordered = sorted(published.values(), key=lambda e: (e.flow.triggers.order, e.flow.id))
    return next((e.flow.id for e in ordered if e.flow.matches_keyword(text, language)), None)


def language_picker(translator: Translator) -> InlineKeyboardMarkup:
    """One button per supported language, each labelled in its own language."""
    buttons = [
        InlineKeyboardButton(
            text=translator.text(code, "language.name"), callback_data=f"lang:{code}"
        )
        for code in translator.languages
    ]
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


def yes_no(yes_text: str, yes_data: str, no_text: str, no_data: str) -> InlineKeyboardMarkup:
    """Two buttons side by side."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(text=yes_text, callback_data=yes_data),
                InlineKeyboardButton(text=no_text, callback_data=no_data),
            ]
        ]
    )
