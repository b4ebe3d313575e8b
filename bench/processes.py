"""Child processes of the benchmarks: the real bot (``python -m bot run``) and the fake API.

Everything listens on 127.0.0.1. Output is kept so a failure can show it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "4242:bench-token-not-used-on-any-network"  # only ever sent to the fake API
WEBHOOK_SECRET = "bench-secret"
READY_LINE = "citizenbot: running"
# The developer's settings must not leak into the bot under measurement.
_CLEARED = (
    "BOT_TOKEN",
    "DATABASE_URL",
    "TELEGRAM_API_BASE",
    "WEBHOOK_URL",
    "WEBHOOK_SECRET",
    "WEB_HOST",
    "WEB_PORT",
    "ADMIN_IDS",
    "MAX_CONCURRENT_UPDATES",
    "CITIZENBOT_FAILPOINTS",
)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS (resident now) and VmHWM (peak resident) of a process, in MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) / 1024
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ChildProcess:
    """A Python module run as a child process, its output kept."""

    def __init__(self, args: list[str], environment: Mapping[str, str]) -> None:
        self.args = args
        self.environment = {k: v for k, v in os.environ.items() if k not in _CLEARED}
        self.environment["PYTHONPATH"] = str(ROOT)
        self.environment.update(environment)
        self.output: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Condition()

    @property
    def pid(self) -> int:
        """The child's process id."""
        assert self._process is not None
        return self._process.pid

    async def start(self, ready: str, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Start the child and wait until it prints a line containing ``ready``."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            *self.args,
            env=self.environment,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        try:
            async with asyncio.timeout(timeout), self._changed:
                while not any(ready in line for line in self.output):
                    if self._reader.done():
                        raise RuntimeError(self._failure("exited before it was ready"))
                    await self._changed.wait()
        except TimeoutError:
            raise RuntimeError(self._failure(f"not ready after {timeout:.0f}s")) from None

    async def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        while line := await self._process.stdout.readline():
            async with self._changed:
                self.output.append(line.decode(errors="replace").rstrip())
                del self.output[:-200]
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.output[-30:])
        return f"{' '.join(self.args)} {what}; its output:\n{tail}"

    async def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not end in 30 seconds."""
        process = self._process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await self._reader
        return process.returncode


@asynccontextmanager
async def fake_api(latency_ms: float = 0.0) -> AsyncIterator[str]:
    """The fake Bot API (and floor webhook) in a child process, answering after
    ``latency_ms``; yields its base URL."""
    port = free_port()
    arguments = ["--port", str(port), "--secret", WEBHOOK_SECRET, "--latency", str(latency_ms)]
    child = ChildProcess(["-m", "bench.fakeapi", *arguments], {})
    await child.start("fakeapi: listening")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await child.stop()


class BotUnderTest:
    """The real bot process in webhook mode against the fake API."""

    def __init__(self, database_url: str, api_base: str, **settings: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.webhook = f"{self.base}/telegram/webhook"
        environment = {
            "BOT_TOKEN": BOT_TOKEN,
            "TELEGRAM_API_BASE": api_base,
            "DATABASE_URL": database_url,
            "WEBHOOK_URL": self.webhook,
            "WEBHOOK_SECRET": WEBHOOK_SECRET,
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.port),
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        self.child = ChildProcess(["-m", "bot", "run"], environment)

    @property
    def pid(self) -> int:
        """The bot's process id."""
        return self.child.pid

    async def health(self, http: aiohttp.ClientSession) -> dict[str, Any]:
        """The bot's /healthz document (it carries the processing backlog)."""
        async with http.get(f"{self.base}/healthz") as response:
            document: dict[str, Any] = await response.json()
            return document

    async def drained(
        self, http: aiohttp.ClientSession, *, limit: float, poll: float = 0.25
    ) -> tuple[bool, float]:
        """Wait until the backlog is empty, at most ``limit`` seconds; (drained, seconds)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < limit:
            if (await self.health(http)).get("backlog") == 0:
                return True, loop.time() - started
            await asyncio.sleep(poll)
        return False, loop.time() - started


@asynccontextmanager
async def running_bot(
    database_url: str, api_base: str, **settings: str
) -> AsyncIterator[BotUnderTest]:
    """Start the bot and wait until it says it is running; stop it on exit."""
    bot = BotUnderTest(database_url, api_base, **settings)
    await bot.child.start(READY_LINE)
    try:
        yield bot
    finally:
        await bot.child.stop()
