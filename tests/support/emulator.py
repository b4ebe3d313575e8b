"""The emulator served on a local port, with a client for its user API."""

from __future__ import annotations

from bot.emulator import Emulator
from bot.emulator.client import EmulatorClient


class EmulatorServer:
    """An emulator served on 127.0.0.1 and a client for its user API."""

    def __init__(self, emulator: Emulator, url: str, client: EmulatorClient) -> None:
        self.emulator = emulator
        self.url = url
        self.client = client
