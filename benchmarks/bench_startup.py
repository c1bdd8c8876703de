"""What each command costs before it does anything: ``hpo <command> --help`` in fresh processes.

Every command imports what it uses when it uses it, so ``--help`` should answer in a fraction
of a second; torch alone takes seconds to import. Prints, per command, the wall time of each
run and which heavy libraries the command loaded, with the date and the machine's load.

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--before PATH]

``--before`` times another checkout as well, run for run in turn with this one (the same
load for both), e.g. ``git archive main | tar -x -C /tmp/main`` then ``--before /tmp/main``.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["", "run", "list", "report", "dashboard", "compare", "export", "predict"]
HEAVY = ("torch", "optuna", "matplotlib", "pandas", "ray", "sklearn", "optuna_dashboard")
PROBE = ("import sys\nfrom hpo.cli import main\ntry:\n    main(sys.argv[1:])\n"
         "except SystemExit:\n    pass\n"
         f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n")


def help_run(tree: Path, command: str) -> tuple[float, list[str]]:
    """Seconds one fresh ``hpo [command] --help`` took from ``tree``, and the heavy libraries
    it loaded."""
    argv = [command, "--help"] if command else ["--help"]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], env=env, capture_output=True,
                          text=True, cwd=tree, check=True)
    seconds = time.perf_counter() - start
    return seconds, ast.literal_eval(done.stderr.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (default 5)")
    parser.add_argument("--before", type=Path, help="another checkout to time in turn with "
                        "this one")
    args = parser.parse_args()
    trees = [args.before, ROOT] if args.before else [ROOT]
    print(f"# {' '.join(sys.argv)}  {datetime.datetime.now().isoformat(timespec='seconds')}  "
          f"load {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    for command in COMMANDS:
        times: dict[Path, list[float]] = {tree: [] for tree in trees}
        loaded: dict[Path, list[str]] = {}
        for _ in range(args.runs):
            for tree in trees:
                seconds, loaded[tree] = help_run(tree, command)
                times[tree].append(seconds)
        for tree in trees:
            runs = " ".join(f"{s:.2f}" for s in times[tree])
            print(f"hpo {command or '':9} --help  {tree.name:12}  s: {runs}  "
                  f"median {sorted(times[tree])[len(times[tree]) // 2]:.2f}  loads {loaded[tree]}")
    print(f"# load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
