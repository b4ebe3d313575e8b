"""Run the emulator alone: `python -m bot.emulator --host 127.0.0.1 --port 8081`."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from bot.emulator import Emulator, RateLimits


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve the emulator until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.emulator", description="Local Telegram Bot API emulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bot-username", default="citizenbot_local_bot")
    parser.add_argument(
        "--rate-limits", action="store_true", help="enforce Telegram's flood limits"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    emulator = Emulator(
        bot_username=args.bot_username,
        rate_limits=RateLimits() if args.rate_limits else None,
    )
    web.run_app(emulator.create_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
