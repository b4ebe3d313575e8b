"""``python -m bench [--quick]``: every benchmark present, one after the other.

Each benchmark is a module of this package with ``main(argv) -> int``; it prints its
table and writes ``bench/results/<name>.json``. Modules that are not there (another
engineer's, not merged yet) are skipped. A failing benchmark does not stop the others;
the exit status says whether all of them ran.

    python -m bench                 # the default run (about 10 minutes on 2 cores)
    python -m bench --quick         # a short run of everything
    python -m bench dialogs memory  # only these
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import time
import traceback
from collections.abc import Sequence

BENCHMARKS = ("dialogs", "webhook", "memory", "outbox", "digest")


def run_benchmark(name: str, quick: bool) -> bool | None:
    """Import ``bench.<name>`` and call its ``main``; None when the module does not exist."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as error:
        if error.name == f"bench.{name}":
            return None
        raise
    main = module.main
    argv = ["--quick"] if quick else []
    # A main without parameters reads sys.argv itself: give it nothing unexpected.
    status = main(argv) if inspect.signature(main).parameters else main()
    return status in (None, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks asked for (all by default)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short run of each benchmark")
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    failed = []
    for name in args.names or BENCHMARKS:
        print(f"\n=== bench.{name} {'(quick) ' if args.quick else ''}===", flush=True)
        started = time.monotonic()
        try:
            outcome = run_benchmark(name, args.quick)
        except Exception:
            traceback.print_exc()
            outcome = False
        if outcome is None:
            print(f"bench.{name} is not there: skipped")
            continue
        print(f"=== bench.{name}: {time.monotonic() - started:.0f} s ===", flush=True)
        if not outcome:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
