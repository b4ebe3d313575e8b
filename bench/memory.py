"""Memory: the bot process's resident size with a large population in the database.

A fresh database gets 100,000 citizens and 10,000 open report conversations, inserted
directly with SQL in bulk (the conversation state is a real one, taken from a citizen
who answered the first questions through the bot). The real bot (``python -m bot
run``, webhook mode, fake Bot API) then handles a burst: citizens with an open
conversation answer its question, others send /start or /help. The benchmark reads
VmRSS (now) and VmHWM (peak) from ``/proc/<pid>/status`` when the bot is ready and
after the burst has been handled.

References in the same run: the same bot on an empty database with a burst of the
same size from new citizens (state in the database means the two should match), and
processes that only import aiogram, or the bot's code.

    python -m bench.memory [--quick] [--citizens 100000] [--sessions 10000] [--burst 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import insert, select

from bench.baseline_bot import MENU_REPORT, SKIP
from bench.dialogs import CitizenbotTarget, pin
from bench.fakebot import UpdateFactory
from bench.harness import (
    BACKENDS,
    available_backends,
    describe_machine,
    fresh_database,
    machine,
    ratio,
    table,
    write_results,
)
from bench.processes import ROOT, ChildProcess, fake_api, memory_mb, running_bot
from bench.webhook import Plan as LoadPlan
from bench.webhook import offer
from storage import migrate
from storage.db import Database
from storage.models import Citizen, DialogSession

NAME = "memory"
GOAL_MB = 150.0
FIRST_USER_ID = 40_000_000
CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class Plan:
    """The population and the burst."""

    citizens: int
    sessions: int
    burst: int
    drain_limit: float


async def real_session_state(url: str) -> tuple[int, dict[str, Any]]:
    """Migrate and seed the database; one citizen answers up to the description question.

    Returns the flow revision and the conversation state the bot saved.
    """
    factory = UpdateFactory(first_update_id=1)
    async with CitizenbotTarget.open(url) as target:
        user = factory.user(FIRST_USER_ID - 1)
        session = target.session
        await target.deliver(factory.text(user, MENU_REPORT))
        shown = session.last_with_buttons(user["id"])
        assert shown is not None
        await target.deliver(factory.callback(user, shown, shown.buttons[1][1]))
        await target.deliver(factory.location(user, *pin(0)))
        await target.deliver(factory.text(user, SKIP))
        async with target.runtime.services.database.uow() as uow:
            row = (await uow.session.scalars(select(DialogSession))).one()
            return row.revision_id, dict(row.state)


async def populate(url: str, plan: Plan) -> dict[str, Any]:
    """Bulk-insert the citizens and their open conversations; returns what was inserted."""
    revision_id, state = await real_session_state(url)
    now = datetime.now(UTC)
    database = Database(url)
    try:
        async with database.engine.begin() as conn:
            first_id = 1 + int(
                (await conn.execute(select(Citizen.id).order_by(Citizen.id.desc()))).scalar() or 0
            )
            for start in range(0, plan.citizens, CHUNK):
                rows = [
                    {
                        "id": first_id + i,
                        "telegram_id": FIRST_USER_ID + i,
                        "pseudonym": f"C-B{i:08d}",
                        "language": "en" if i % 4 else "fr",
                        "language_chosen": False,
                        "first_name": f"Citizen{FIRST_USER_ID + i}",
                        "username": f"citizen{FIRST_USER_ID + i}",
                        "consented_at": now,
                        "created_at": now,
                        "last_seen_at": now,
                    }
                    for i in range(start, min(start + CHUNK, plan.citizens))
                ]
                await conn.execute(insert(Citizen), rows)
            for start in range(0, plan.sessions, CHUNK):
                sessions: list[dict[str, Any]] = [
                    {
                        "citizen_id": first_id + i,
                        "flow_id": "report",
                        "revision_id": revision_id,
                        "state": state,
                        "started_at": now,
                        "last_activity_at": now,
                        "expires_at": now + timedelta(days=3),
                        "nudge_at": now + timedelta(hours=12),
                    }
                    for i in range(start, min(start + CHUNK, plan.sessions))
                ]
                await conn.execute(insert(DialogSession), sessions)
    finally:
        await database.dispose()
    return {"citizens": plan.citizens + 1, "open_sessions": plan.sessions + 1}


def burst_bodies(plan: Plan, *, known: bool, seed: int = 11) -> list[bytes]:
    """``plan.burst`` updates, one per citizen.

    Known citizens: half of them have an open conversation and answer its question
    (the description), the other half send /start or /help. Otherwise: new citizens
    sending /start or /help.
    """
    chooser = random.Random(seed)
    factory = UpdateFactory(first_update_id=1_000)
    answering = plan.burst // 2 if known else 0
    with_session = chooser.sample(range(plan.sessions), answering)
    without = chooser.sample(range(plan.sessions, plan.citizens), plan.burst - answering)
    bodies = []
    for index in with_session:
        user = factory.user(FIRST_USER_ID + index)
        bodies.append(factory.text(user, f"The bench by the bus stop is broken ({index})"))
    for index in without:
        offset = FIRST_USER_ID if known else FIRST_USER_ID + plan.citizens
        user = factory.user(offset + index)
        bodies.append(factory.text(user, "/start" if chooser.random() < 0.5 else "/help"))
    chooser.shuffle(bodies)
    return [json.dumps(body).encode() for body in bodies]


async def measure_bot(
    backend: str, api_base: str, plan: Plan, *, populated: bool
) -> dict[str, Any]:
    """RSS of the bot when ready and after the burst, on a populated or empty database."""
    async with fresh_database(backend) as url:
        if populated:
            inserted = await populate(url, plan)
        else:
            await migrate.upgrade(url)
            inserted = {"citizens": 0, "open_sessions": 0}
        async with running_bot(url, api_base) as bot, aiohttp.ClientSession() as http:
            await asyncio.sleep(1.0)  # let start-up garbage settle
            ready = memory_mb(bot.pid)
            bodies = burst_bodies(plan, known=populated)
            load = LoadPlan(
                rate=1000.0,
                seconds=len(bodies) / 1000.0,
                connections=100,
                users=0,
                drain_limit=plan.drain_limit,
                grace=plan.drain_limit,
            )
            posted = await offer(bot.webhook, bodies, load)
            drained, waited = await bot.drained(http, limit=plan.drain_limit)
            after = memory_mb(bot.pid)
    return {
        "database": inserted,
        "burst": len(bodies),
        "accepted": posted.statuses.get("200", 0),
        "drained": drained,
        "seconds_to_handle": round(posted.seconds + waited, 1),
        "ready_rss_mb": round(ready["VmRSS"], 1),
        "after_rss_mb": round(after["VmRSS"], 1),
        "peak_rss_mb": round(after["VmHWM"], 1),
    }


async def imports_only(module: str) -> float:
    """RSS (MB) of a fresh process that imports ``module`` and nothing else."""
    script = (
        f"import {module}; from pathlib import Path; "
        "print('rss', Path('/proc/self/status').read_text().split('VmRSS:')[1].split()[0])"
    )
    child = ChildProcess(["-c", script], {})
    await child.start("rss")
    await child.stop()
    line = next(line for line in child.output if line.startswith("rss"))
    return round(int(line.split()[1]) / 1024, 1)


async def benchmark(backends: Sequence[str], plan: Plan) -> dict[str, Any]:
    """Imports only, then per backend: the empty and the populated database."""
    usable, postgres = await available_backends(backends)
    info = machine(postgres)
    print(describe_machine(info), flush=True)
    print(
        f"{plan.citizens} citizens, {plan.sessions} open conversations; a burst of "
        f"{plan.burst} updates (code under {ROOT})",
        flush=True,
    )
    results: dict[str, Any] = {"machine": info, "plan": asdict(plan), "targets": {}}
    results["imports_only"] = {
        "aiogram": await imports_only("aiogram"),
        "bot": await imports_only("bot.app, bot.cli"),
    }
    async with fake_api() as api_base:
        for backend in usable:
            for populated in (False, True):
                name = f"{backend}, {'populated' if populated else 'empty'}"
                measured = await measure_bot(backend, api_base, plan, populated=populated)
                results["targets"][name] = measured
                print(f"  {name}: {measured}", flush=True)
    results["ratios"] = {}
    for backend in usable:
        empty = results["targets"][f"{backend}, empty"]
        full = results["targets"][f"{backend}, populated"]
        results["ratios"][backend] = {
            "populated_vs_empty_after": ratio(full["after_rss_mb"], empty["after_rss_mb"]),
            "populated_vs_empty_peak": ratio(full["peak_rss_mb"], empty["peak_rss_mb"]),
            "after_vs_goal": ratio(full["after_rss_mb"], GOAL_MB),
            "after_vs_aiogram_import": ratio(
                full["after_rss_mb"], results["imports_only"]["aiogram"]
            ),
            "peak_vs_goal": ratio(full["peak_rss_mb"], GOAL_MB),
        }
    print_results(results)
    path = write_results(NAME, results)
    print(f"results: {path}")
    return results


def print_results(results: dict[str, Any]) -> None:
    """The table and the verdicts."""
    rows = [
        [
            name,
            f["database"]["citizens"],
            f["database"]["open_sessions"],
            f"{f['accepted']}/{f['burst']}" + ("" if f["drained"] else " (not drained)"),
            f["ready_rss_mb"],
            f["after_rss_mb"],
            f["peak_rss_mb"],
        ]
        for name, f in results["targets"].items()
    ]
    print()
    print(
        table(
            "Memory of the bot process (MB; VmRSS when ready and after the burst, VmHWM peak)",
            ["database", "citizens", "open sessions", "burst handled", "ready", "after", "peak"],
            rows,
        )
    )
    imports = results["imports_only"]
    print(
        f"a process that only imports aiogram: {imports['aiogram']} MB; "
        f"only the bot's code: {imports['bot']} MB"
    )
    for backend, found in results["ratios"].items():
        met = found["after_vs_goal"] <= 1
        print(
            f"{backend}: populated/empty = {found['populated_vs_empty_after']:.2f}x after the "
            f"burst ({found['populated_vs_empty_peak']:.2f}x at peak); after the burst "
            f"{found['after_vs_goal']:.2f}x the {GOAL_MB:.0f} MB goal "
            f"({'met' if met else 'NOT met'}), peak {found['peak_vs_goal']:.2f}x; "
            f"{found['after_vs_aiogram_import']:.2f}x a process that only imports aiogram"
        )
    print()


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description="Memory with a large population."
    )
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--citizens", type=int, default=100_000)
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--burst", type=int, help="updates in the burst (default 600)")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=["sqlite"])
    args = parser.parse_args(argv)
    plan = Plan(
        citizens=args.citizens,
        sessions=args.sessions,
        burst=args.burst or (300 if args.quick else 600),
        drain_limit=60.0 if args.quick else 120.0,
    )
    if plan.sessions > plan.citizens or plan.burst // 2 > plan.sessions:
        parser.error("need sessions <= citizens and burst/2 <= sessions")
    asyncio.run(benchmark(args.backends, plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
