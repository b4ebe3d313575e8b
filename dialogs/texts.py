"""The engine's system texts (buttons, hints, re-prompts) and locale-aware formatting.

The texts themselves live in ``system_texts.yaml``; Python only knows their keys.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.numbers import format_decimal

from dialogs.html import to_plain
from dialogs.templates import render

SystemTexts = Mapping[str, Mapping[str, str]]
SYSTEM_TEXTS_FILE = "system_texts.yaml"


class SystemText(StrEnum):
    """Keys of ``system_texts.yaml``; loading fails if any is missing."""

    BACK = "back"
    CANCEL = "cancel"
    SKIP = "skip"
    DONE = "done"
    NEXT_PAGE = "next_page"
    PREV_PAGE = "prev_page"
    SUBMIT = "submit"
    EDIT = "edit"
    YES_BUTTON = "yes_button"
    NO_BUTTON = "no_button"
    TODAY = "today"
    TOMORROW = "tomorrow"
    YESTERDAY = "yesterday"
    SHARE_LOCATION = "share_location"
    KEEP_TRYING = "keep_trying"
    MULTI_HINT = "multi_hint"
    PAGE = "page"
    RATING_SCALE = "rating_scale"
    LOCATION_HINT_PIN = "location_hint_pin"
    LOCATION_HINT_ADDRESS = "location_hint_address"
    PHOTO_HINT = "photo_hint"
    PHOTO_RECEIVED = "photo_received"
    DATE_HINT = "date_hint"
    DATETIME_HINT = "datetime_hint"
    STILL_THERE = "still_there"
    LOCATION_RECEIVED = "location_received"
    PHOTOS_RECEIVED = "photos_received"
    KEYBOARD_CLOSED = "keyboard_closed"
    CANCELLED = "cancelled"
    NO_OPTIONS = "no_options"
    FLOW_CHANGED = "flow_changed"
    INTERNAL_ERROR = "internal_error"
    TROUBLE = "trouble"
    TROUBLE_NO_SKIP = "trouble_no_skip"
    SUMMARY_LINE = "summary_line"
    NOT_ANSWERED = "not_answered"
    SELECTED_MARK = "selected_mark"
    RATING_LABEL = "rating_label"
    LOCATION_PIN_LABEL = "location_pin_label"
    PHOTO_COUNT_ONE = "photo_count_one"
    PHOTO_COUNT_OTHER = "photo_count_other"
    YES_WORDS = "yes_words"
    NO_WORDS = "no_words"
    DATE_FORMATS = "date_formats"
    DATETIME_FORMATS = "datetime_formats"
    ERROR_STALE = "error_stale"
    ERROR_UNSUPPORTED = "error_unsupported"
    ERROR_COMMAND = "error_command"
    ERROR_CHOICE = "error_choice"
    ERROR_TEXT_EXPECTED = "error_text_expected"
    ERROR_TEXT_SHORT = "error_text_short"
    ERROR_TEXT_LONG = "error_text_long"
    ERROR_NUMBER = "error_number"
    ERROR_INTEGER = "error_integer"
    ERROR_NUMBER_RANGE = "error_number_range"
    ERROR_NUMBER_MIN = "error_number_min"
    ERROR_NUMBER_MAX = "error_number_max"
    ERROR_RATING = "error_rating"
    ERROR_YESNO = "error_yesno"
    ERROR_LOCATION = "error_location"
    ERROR_LOCATION_OR_ADDRESS = "error_location_or_address"
    ERROR_ADDRESS_SHORT = "error_address_short"
    ERROR_PHOTO = "error_photo"
    ERROR_PHOTO_REQUIRED = "error_photo_required"
    ERROR_DATE = "error_date"
    ERROR_DATETIME = "error_datetime"
    ERROR_DATE_MIN = "error_date_min"
    ERROR_DATE_MAX = "error_date_max"
    ERROR_SELECT_MIN = "error_select_min"
    ERROR_SELECT_MAX = "error_select_max"
    ERROR_CONFIRM = "error_confirm"
    ERROR_CANNOT_SKIP = "error_cannot_skip"
    ERROR_CANNOT_GO_BACK = "error_cannot_go_back"


def parse_system_texts(text: str) -> dict[str, dict[str, str]]:
    """Parse a system-texts document; raise ValueError naming what is malformed or missing."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError("system texts must be a mapping of key to {language: text}")
    texts: dict[str, dict[str, str]] = {}
    for key, value in data.items():
        if not isinstance(value, dict) or not all(
            isinstance(lang, str) and isinstance(item, str) for lang, item in value.items()
        ):
            raise ValueError(f"system text '{key}' must map languages to texts")
        texts[str(key)] = dict(value)
    missing = [key.value for key in SystemText if key.value not in texts]
    if missing:
        raise ValueError(f"system texts lack: {', '.join(missing)}")
    unknown = sorted(set(texts) - {key.value for key in SystemText})
    if unknown:
        raise ValueError(f"unknown system texts: {', '.join(unknown)}")
    return texts


@functools.cache
def _packaged_system_texts() -> SystemTexts:
    text = resources.files("dialogs").joinpath(SYSTEM_TEXTS_FILE).read_text(encoding="utf-8")
    parsed = parse_system_texts(text)
    return MappingProxyType({key: MappingProxyType(value) for key, value in parsed.items()})


def load_system_texts() -> SystemTexts:
    """The system texts shipped with the engine (read once, immutable)."""
    return _packaged_system_texts()


class TextBook:
    """System texts and formatting for one language, with fallbacks for a missing one."""

    def __init__(self, texts: SystemTexts, language: str, fallbacks: tuple[str, ...]) -> None:
        self.texts = texts
        self.language = language
        self.fallbacks = fallbacks

    def raw(self, key: SystemText) -> str:
        """The template of ``key`` in this language (or the first fallback that has it)."""
        variants = self.texts.get(key.value, {})
        for language in (self.language, *self.fallbacks):
            if variants.get(language):
                return variants[language]
        return next(iter(variants.values()), key.value)

    def html(self, key: SystemText, **params: object) -> str:
        """``key`` as HTML, with escaped parameters."""
        return render(self.raw(key), lambda name: str(params.get(name, "")))

    def plain(self, key: SystemText, **params: object) -> str:
        """``key`` as plain text (for buttons)."""
        return render(to_plain(self.raw(key)), lambda name: str(params.get(name, "")), html=False)

    def words(self, key: SystemText) -> frozenset[str]:
        """A comma-separated word list, case-folded."""
        return frozenset(word.strip().casefold() for word in self.raw(key).split(",") if word)

    def formats(self, key: SystemText) -> list[str]:
        """A ``|``-separated list of strptime formats."""
        return [item.strip() for item in self.raw(key).split("|") if item.strip()]

    def _locale(self) -> Locale | None:
        try:
            return Locale.parse(self.language.replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            return None

    def number(self, value: float) -> str:
        """A number as written in this language (3,5 in French)."""
        locale = self._locale()
        if locale is None:
            return str(value)
        return str(format_decimal(value, locale=locale))

    def date(self, value: date) -> str:
        """A date in words (31 December 2025)."""
        locale = self._locale()
        if locale is None:
            return value.isoformat()
        return str(format_date(value, format="long", locale=locale))

    def datetime(self, value: datetime) -> str:
        """A date and a time of day."""
        locale = self._locale()
        if locale is None:
            return value.isoformat(sep=" ", timespec="minutes")
        day = format_date(value.date(), format="long", locale=locale)
        return f"{day} {format_time(value, format='short', locale=locale)}"

    def plural(self, count: int, one: SystemText, other: SystemText, **params: Any) -> str:
        """Pick ``one`` or ``other`` by the language's plural rules."""
        locale = self._locale()
        form = locale.plural_form(count) if locale is not None else "other"
        return self.plain(one if form == "one" else other, count=count, **params)
