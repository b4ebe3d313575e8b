"""render's shortcuts (no braces; well-formedness remembered) give what the full path gives."""

from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from dialogs.html import escape
from dialogs.templates import TemplateError, placeholders, render, shorten

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


def _reference(
    template: str, lookup: Callable[[str], str], *, limit: int = 1000, html: bool = True
) -> str:
    """render without shortcuts: check every time, substitute every time."""
    quote: Callable[[str], str] = escape if html else str
    try:
        placeholders(template)
    except TemplateError:
        return quote(template)

    def substitute(match: re.Match[str]) -> str:
        piece = match.group()
        if piece in {"{{", "}}"}:
            return piece[0]
        return quote(shorten(lookup((match.group(1) or "").strip()), limit))

    return _PLACEHOLDER.sub(substitute, template)


def _lookup(name: str) -> str:
    return f"<{name}> & more"


templates = st.lists(
    st.sampled_from(["{", "}", "{{", "}}", "{answers.x}", "{ a.b }", "{bad name}", "<b>", "é", "&"])
    | st.text(max_size=5),
    max_size=8,
).map("".join)


@given(templates, st.booleans(), st.integers(min_value=1, max_value=12))
def test_render_agrees_with_the_unshortened_path(template: str, html: bool, limit: int) -> None:
    for _ in range(2):  # the second time, well-formedness comes from the cache
        assert render(template, _lookup, html=html, limit=limit) == _reference(
            template, _lookup, html=html, limit=limit
        )
