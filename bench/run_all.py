"""Run every benchmark, each in a fresh process, and print their JSON lines (one per benchmark run).

The enrollment and command-loop benchmarks run twice: with Muster in one uvicorn process of its own (as
`muster serve` runs it) and in the benchmark's own event loop, so the cost of sharing the cores is visible.

    python -m bench.run_all [--sqlite | --database-url URL] [--quick]

Exits non-zero when a benchmark crashed (not when a target was missed: the JSON says that).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from tests.harness import PG_URL

# (module, arguments): the defaults are the sizes; --quick divides them for a smoke run.
RUNS: list[tuple[str, list[str]]] = [
    ("bench.enrollment", ["--devices", "2000", "--server-processes", "1"]),
    ("bench.enrollment", ["--devices", "300", "--server-processes", "0"]),
    ("bench.command_loop", ["--devices", "300", "--commands", "20", "--server-processes", "1"]),
    ("bench.command_loop", ["--devices", "200", "--commands", "20", "--server-processes", "0"]),
    ("bench.fanout", ["--devices", "100000"]),
    ("bench.ade_sync", ["--devices", "200000", "--abm-process"]),
    ("bench.device_list", ["--devices", "1000000"]),
    ("bench.corporate_identifiers", ["--identifiers", "1000000"]),
    ("bench.enrollment_decision", ["--devices", "1000000"]),
]
QUICK = {"2000": "100", "300": "50", "200": "40", "100000": "5000", "200000": "2000", "1000000": "20000"}


def main() -> int:
    options = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = options.add_mutually_exclusive_group()
    where.add_argument("--database-url", default=PG_URL, help="PostgreSQL server for the fresh databases")
    where.add_argument("--sqlite", action="store_true", help="use SQLite files instead of PostgreSQL")
    options.add_argument("--quick", action="store_true", help="small sizes: check that everything runs")
    args = options.parse_args()
    database = ["--sqlite"] if args.sqlite else ["--database-url", args.database_url]
    crashed = 0
    for module, arguments in RUNS:
        if args.quick:
            arguments = [QUICK.get(argument, argument) for argument in arguments]
        started = time.perf_counter()
        # stdout is the JSON line; stderr (server logs, tracebacks) goes through to the terminal.
        result = subprocess.run(
            [sys.executable, "-m", module, *arguments, *database], stdout=subprocess.PIPE, text=True, check=False
        )
        if result.returncode != 0:
            crashed += 1
            print(f"{module} {' '.join(arguments)}: exited {result.returncode}", file=sys.stderr)
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
        print(f"{module} {' '.join(arguments)}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
