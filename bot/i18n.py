"""Translation catalogues (gettext .po files read with Babel) and rendering.

Message ids are stable keys (``start.welcome``); every enabled language has a
catalogue with every key, which a test checks. Texts are HTML templates for
Telegram's HTML parse mode: values substituted into them are escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from string import Formatter

from babel.messages.pofile import read_po

from bot.config import SUPPORTED_LANGUAGES

LOCALES = Path(__file__).with_name("locales")


class Markup(str):
    """Text already rendered as Telegram HTML (another template's result): not escaped again."""

    __slots__ = ()


class _EscapingFormatter(Formatter):
    def format_field(self, value: object, format_spec: str) -> str:
        formatted = super().format_field(value, format_spec)
        return formatted if isinstance(value, Markup) else escape(formatted, quote=False)


_FORMATTER = _EscapingFormatter()


class Translator:
    """Looks up texts by key and language, falling back to the default language."""

    def __init__(
        self,
        catalogues: Mapping[str, Mapping[str, str]],
        default_language: str,
    ) -> None:
        if default_language not in catalogues:
            raise ValueError(f"no catalogue for the default language {default_language!r}")
        self._catalogues = catalogues
        self.default_language = default_language

    @classmethod
    def load(
        cls,
        default_language: str,
        languages: Iterable[str] = SUPPORTED_LANGUAGES,
        directory: Path = LOCALES,
    ) -> Translator:
        """Read ``<directory>/<lang>/LC_MESSAGES/messages.po`` for each language."""
        catalogues: dict[str, dict[str, str]] = {}
        for language in languages:
            path = directory / language / "LC_MESSAGES" / "messages.po"
            with path.open("rb") as handle:
                catalogue = read_po(handle, locale=language)
            catalogues[language] = {
                str(message.id): str(message.string)
                for message in catalogue
                if message.id and message.string and not message.fuzzy
            }
        return cls(catalogues, default_language)

    @property
    def languages(self) -> tuple[str, ...]:
        """Languages with a catalogue."""
        return tuple(self._catalogues)

    def keys(self, language: str) -> set[str]:
        """Every key the language's catalogue defines."""
        return set(self._catalogues[language])

    def resolve_language(self, code: str | None) -> str:
        """Map a Telegram ``language_code`` such as ``fr-CA`` to a supported language."""
        if code:
            base = code.split("-")[0].split("_")[0].lower()
            if base in self._catalogues:
                return base
        return self.default_language

    def template(self, language: str, key: str) -> str:
        """The raw template for ``key``, falling back to the default language."""
        template = self._catalogues.get(language, {}).get(key)
        if template is None:
            template = self._catalogues[self.default_language].get(key)
        if template is None:
            raise KeyError(f"no text for {key!r}")
        return template

    def text(self, language: str, key: str, /, **values: object) -> str:
        """The text for ``key`` in ``language``, with ``values`` escaped into it."""
        return _FORMATTER.format(self.template(language, key), **values)

    def has(self, key: str) -> bool:
        """Whether the default catalogue defines ``key``."""
        return key in self._catalogues[self.default_language]

    def all_languages(self, key: str) -> dict[str, str]:
        """The text for ``key`` in every language (menu buttons are matched in any)."""
        return {language: self.text(language, key) for language in self._catalogues}
