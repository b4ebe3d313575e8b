"""Callback data of the buttons follow-ups put under their messages.

The handlers that answer them already exist: "can't come" is the /myshifts cancel
button (``bot.handlers.account.SHIFT_PREFIX``) and a flow button is the flow switch
(``bot.handlers.dialog.SWITCH_PREFIX``). The prefixes are repeated here rather than
imported, so that use cases do not import handlers; a test keeps them equal.
"""

from __future__ import annotations

from typing import Final

CANT_COME_PREFIX: Final = "shift:x:"
START_FLOW_PREFIX: Final = "sw:"


def cant_come_data(signup_id: int) -> str:
    """The "can't come" button of a sign-up: it frees the place for the waiting list."""
    return f"{CANT_COME_PREFIX}{signup_id}"


def start_flow_data(flow_id: str) -> str:
    """A button that starts a flow (after asking, if another one is open)."""
    return f"{START_FLOW_PREFIX}{flow_id}"
