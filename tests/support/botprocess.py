"""The real bot, started as a subprocess the way a user runs it (``python -m bot run``)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

TEST_TOKEN = "424242:e2e-test-token_abcdef"
READY_LINE = "citizenbot: running"

# Variables of the developer's shell that must not leak into the bot under test.
_CLEARED = (
    "BOT_TOKEN",
    "DATABASE_URL",
    "TELEGRAM_API_BASE",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEB_HOST",
    "WEB_PORT",
    "ADMIN_IDS",
    "CITIZENBOT_FAILPOINTS",
    "WORKER_ID",
)


def free_port() -> int:
    """A port nothing listens on right now (for the bot's own web server)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class BotProcess:
    """Starts, stops and kills one bot process and keeps what it printed."""

    def __init__(
        self, environment: Mapping[str, str], workdir: Path, *, module: str = "bot"
    ) -> None:
        self.environment = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        # Test users type far faster than people: keep flood control out of their way.
        self.environment.update(
            {"LOG_LEVEL": "INFO", "POLLING_TIMEOUT": "2", "FLOOD_BURST": "1000"}
        )
        self.environment.update(environment)
        self.workdir = workdir
        self.module = module  # what ``python -m`` runs (a wrapper of the bot in some tests)
        self.output: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._lines = asyncio.Condition()

    @property
    def port(self) -> int:
        """The bot's web server port."""
        return int(self.environment["WEB_PORT"])

    @property
    def pid(self) -> int | None:
        """The process id while it runs (the bot names its claims host:pid)."""
        return None if self._process is None else self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the process ended."""
        return None if self._process is None else self._process.returncode

    async def start(self, *, wait_ready: bool = True, timeout: float = 40.0) -> None:  # noqa: ASYNC109
        """Start the process; by default wait until it says it is running."""
        self._ready.clear()
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self.module,
            "run",
            env=self.environment,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read(self._process))
        if wait_ready:
            await self.wait_for_output(READY_LINE, timeout=timeout)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            async with self._lines:
                self.output.append(line.decode(errors="replace").rstrip())
                self._lines.notify_all()
        async with self._lines:
            self._lines.notify_all()

    async def wait_for_output(self, fragment: str, *, timeout: float = 40.0) -> str:  # noqa: ASYNC109
        """The first printed line containing ``fragment``; fails if the process ends first."""

        def found() -> str | None:
            return next((line for line in self.output if fragment in line), None)

        try:
            async with asyncio.timeout(timeout), self._lines:
                while (line := found()) is None:
                    if self._reader is not None and self._reader.done():
                        raise AssertionError(self._failure(f"exited before printing {fragment!r}"))
                    await self._lines.wait()
                return line
        except TimeoutError:
            raise AssertionError(
                self._failure(f"did not print {fragment!r} in {timeout}s")
            ) from None

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.output[-40:])
        return f"bot process {what}; its output:\n{tail}"

    async def wait_exit(self, timeout: float = 30.0) -> int:  # noqa: ASYNC109
        """Wait for the process to end and return its status."""
        assert self._process is not None
        async with asyncio.timeout(timeout):
            code = await self._process.wait()
            if self._reader is not None:
                await self._reader
        return code

    async def stop(self) -> int | None:
        """SIGTERM and wait (a graceful stop)."""
        if self._process is None or self._process.returncode is not None:
            return self.returncode
        self._process.send_signal(signal.SIGTERM)
        try:
            return await self.wait_exit(20)
        except TimeoutError:
            self._process.kill()
            return await self.wait_exit(10)

    async def kill(self) -> int:
        """SIGKILL: the process dies at once, as in a power cut."""
        assert self._process is not None
        if self._process.returncode is None:
            self._process.kill()
        return await self.wait_exit(10)
