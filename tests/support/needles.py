"""Looking for a citizen's traces in text read from the database."""

from __future__ import annotations

import re


def holds(text: str, needle: str) -> bool:
    """``needle`` in ``text``; a number only as a whole number (not inside a timestamp)."""
    if needle.isdigit():
        return re.search(rf"(?<!\d){needle}(?!\d)", text) is not None
    return needle in text
