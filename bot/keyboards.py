"""Keyboards built from translated labels (texts live in the catalogues)."""

from __future__ import annotations

from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.i18n import Translator

MENU_ITEMS = ("menu.report", "menu.volunteer", "menu.rate")


def main_menu(translator: Translator, language: str) -> ReplyKeyboardMarkup:
    """The persistent main menu: large buttons that also work on old phones."""
    report, volunteer, rate = (translator.text(language, key) for key in MENU_ITEMS)
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=report)],
            [KeyboardButton(text=volunteer), KeyboardButton(text=rate)],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


def language_picker(translator: Translator) -> InlineKeyboardMarkup:
    """One button per supported language, each labelled in its own language."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=translator.text(code, "language.name"), callback_data=f"lang:{code}"
                )
                for code in translator.languages
            ]
        ]
    )


def menu_item_for(translator: Translator, text: str) -> str | None:
    """The menu key whose label (in any language) is ``text``, if any."""
    for key in MENU_ITEMS:
        if text in translator.all_languages(key).values():
            return key
    return None
