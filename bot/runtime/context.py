"""Typed services handed to handlers (instead of an untyped bag of middleware keys)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.clock import Clock
from bot.config import Settings
from bot.i18n import Translator
from storage.db import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What every handler and use case may depend on; built once at start-up."""

    settings: Settings
    database: Database
    translator: Translator
    clock: Clock
