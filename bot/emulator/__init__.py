"""A local Telegram Bot API emulator, its user-side API and playground page.

No machine of this project reaches Telegram, so the bot talks to this instead: the
same URLs, parameters, JSON objects and errors as the real Bot API, plus a
user-side API (`/emulator/...`, see `bot.emulator.userapi`) through which tests and
people act as Telegram users, and a playground page at `/`.

    emulator = Emulator(personas=[Persona(1, "Alice", "en", "Citizen")])
    emulator.setup(app)            # or: web.run_app(emulator.create_app())

The emulator imports nothing from the rest of the bot.
"""

from bot.emulator.emulator import Emulator
from bot.emulator.state import CallRecord
from bot.emulator.types import DEFAULT_PERSONAS, FaultRule, Persona, RateLimits

__all__ = ["DEFAULT_PERSONAS", "CallRecord", "Emulator", "FaultRule", "Persona", "RateLimits"]
