"""Translation catalogues: complete in every language, values escaped."""

from __future__ import annotations

import re

import pytest

from bot.config import SUPPORTED_LANGUAGES
from bot.i18n import Markup, Translator


@pytest.fixture(scope="module")
def translator() -> Translator:
    return Translator.load("en")


def test_every_language_has_every_key(translator: Translator) -> None:
    reference = translator.keys("en")
    for language in SUPPORTED_LANGUAGES:
        assert translator.keys(language) == reference, language


def test_placeholders_match_across_languages(translator: Translator) -> None:
    for key in translator.keys("en"):
        names = {
            language: frozenset(re.findall(r"{(\w+)}", translator.template(language, key)))
            for language in SUPPORTED_LANGUAGES
        }
        assert len(set(names.values())) == 1, (key, names)


def test_values_are_escaped_but_markup_in_the_template_is_kept(translator: Translator) -> None:
    text = translator.text("en", "start.welcome", name="<b>Eve & co</b>")
    assert "&lt;b&gt;Eve &amp; co&lt;/b&gt;" in text
    assert "<b>report a problem</b>" in text


@pytest.mark.parametrize(
    ("code", "expected"),
    [("fr", "fr"), ("fr-CA", "fr"), ("en-GB", "en"), ("de", "en"), (None, "en")],
)
def test_telegram_language_codes_map_to_supported_languages(
    translator: Translator, code: str | None, expected: str
) -> None:
    assert translator.resolve_language(code) == expected


def test_a_rendered_text_placed_in_another_is_not_escaped_twice() -> None:
    translator = Translator.load("en")
    inner = translator.text("en", "broadcast.segment.area", value="Lac & Gare")
    assert "Lac &amp; Gare" in inner
    outer = translator.text("en", "broadcast.ask_content", segment=Markup(inner), count=3)
    assert "Lac &amp; Gare" in outer and "&amp;amp;" not in outer
    # Plain values are still escaped.
    assert "&lt;b&gt;" in translator.text("en", "broadcast.ask_content", segment="<b>", count=3)
