"""citizenbot: the Telegram runtime, use cases, scheduler, web server and CLI."""

from bot.runtime.lean_aiogram import install as _import_aiogram_lean

# Before anything imports aiogram: its models are built when first used, not all at
# import (about 100 MB less memory; see bot/runtime/lean_aiogram.py).
_import_aiogram_lean()
