"""`make bench`: run every benchmark module berth has and print their tables.

    .venv/bin/python bench/run.py [--only api] [--strict] [--duration S] [--warmup S] [--runs N]

Exit status: 1 if a bench crashed or a run had request errors (its numbers are invalid);
with --strict also 1 when a target is missed.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so `bench.*` imports (also in spawned client processes)
    sys.path.insert(0, str(ROOT))

# Every bench module: bench/<name>.py with run(**options). If it returns an object with
# `renderables` (and `valid`, `targets_met`), run.py prints those; anything else means the module
# printed its own table. Options a module has no use for it must accept and ignore (**_).
BENCHES = ["api", "reads", "invoke", "sandbox", "placement", "placement_api", "chaos",
           "callback", "mesos_driver", "fuzz", "dynamodb"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run berth's benchmarks.")
    parser.add_argument("--only", action="append", choices=BENCHES,
                        help="run only this bench (repeatable)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--duration", type=float, default=2.0,
                        help="measured seconds per config and run [2]")
    parser.add_argument("--warmup", type=float, default=0.5, help="warm-up seconds [0.5]")
    parser.add_argument("--runs", type=int, default=2, help="runs per config [2]")
    args = parser.parse_args(argv)

    from bench.api import make_console
    console = make_console()
    status = 0
    for name in args.only or BENCHES:
        console.rule(f"bench: {name}")
        started = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            result = module.run(duration=args.duration, warmup=args.warmup, runs=args.runs)
        except Exception:
            console.print(f"[bold red]bench {name} crashed:[/]\n{traceback.format_exc()}")
            status = 1
            continue
        for renderable in getattr(result, "renderables", ()):
            console.print(renderable)
        console.print(f"[dim]{name}: {time.monotonic() - started:.0f} s[/]")
        if not getattr(result, "valid", True):
            status = 1
        if args.strict and not getattr(result, "targets_met", True):
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
