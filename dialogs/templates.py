"""Text templates: ``{answers.description}`` placeholders inside Telegram HTML.

``{{`` and ``}}`` stand for literal braces. Every substituted value is HTML-escaped,
so a citizen's ``<script>`` arrives as text while the author's own ``<b>`` stays bold.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from dialogs.html import escape

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")
ELLIPSIS = "…"


class TemplateError(ValueError):
    """A placeholder is malformed."""


def placeholders(template: str) -> list[str]:
    """The dotted names used by a template; raise TemplateError on a malformed brace."""
    found: list[str] = []
    for match in _PLACEHOLDER.finditer(template):
        piece = match.group()
        if piece in {"{{", "}}"}:
            continue
        if piece in {"{", "}"}:
            raise TemplateError(f"unmatched '{piece}' (write {piece}{piece} for a brace)")
        name = (match.group(1) or "").strip()
        if not _NAME.match(name):
            raise TemplateError(f"placeholder '{piece}' is not a name such as {{answers.x}}")
        found.append(name)
    return found


@lru_cache(maxsize=1024)
def _well_formed(template: str) -> bool:
    # Templates are the flows' and the system's texts: few, and rendered again and again.
    try:
        placeholders(template)
    except TemplateError:
        return False
    return True


def shorten(text: str, limit: int) -> str:
    """Cut plain text to ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + ELLIPSIS


def render(
    template: str, lookup: Callable[[str], str], *, limit: int = 1000, html: bool = True
) -> str:
    """Fill placeholders with plain-text values, each cut to ``limit`` characters.

    With ``html`` the values are escaped for an HTML message; without, the result is
    plain text (a button label). A malformed template is rendered literally rather than
    failing: loading has already reported it, and a citizen should still get a message.
    """
    if "{" not in template and "}" not in template:
        return template  # most texts: nothing to fill in, nothing malformed
    quote: Callable[[str], str] = escape if html else str
    if not _well_formed(template):
        return quote(template)

    def substitute(match: re.Match[str]) -> str:
        piece = match.group()
        if piece in {"{{", "}}"}:
            return piece[0]
        return quote(shorten(lookup((match.group(1) or "").strip()), limit))

    return _PLACEHOLDER.sub(substitute, template)
