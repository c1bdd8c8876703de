"""What a fresh Python process has imported, for the start-up tests.

pytest's own process has imported every library by the time a test runs, so a test of what
a module or a command loads must ask a new process.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The libraries that cost seconds of start-up, or that only one command needs.
HEAVY = ("torch", "optuna", "matplotlib", "pandas", "ray", "sklearn", "optuna_dashboard")


def heavy_loaded(code: str, cwd: Path, heavy: Sequence[str] = HEAVY) -> list[str]:
    """Which of ``heavy`` a fresh process has imported once it has run ``code``."""
    probe = (f"{code}\nimport sys\n"
             f"print(sorted(m for m in {tuple(heavy)!r} if m in sys.modules))\n")
    return ast.literal_eval(_python(probe, cwd).splitlines()[-1])


# Forked from a process that has imported torch (and numpy) only: each child imports one
# module as a fresh process would, without paying torch's seconds again.
_PER_MODULE = """\
import importlib, json, os, sys, traceback
import torch
HEAVY, MODULES, failed = {heavy!r}, {modules!r}, []
assert not [m for m in HEAVY if m in sys.modules and m != "torch"], "torch loads them"
for name in MODULES:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
            print(json.dumps([name, sorted(m for m in HEAVY if m in sys.modules)]), flush=True)
            os._exit(0)
        except BaseException:
            traceback.print_exc()
            os._exit(1)
    if os.waitpid(pid, 0)[1]:
        failed.append(name)
sys.exit(f"could not import {{failed}}" if failed else 0)
"""


def heavy_loaded_per_module(modules: Sequence[str], cwd: Path,
                            heavy: Sequence[str] = HEAVY) -> dict[str, list[str]]:
    """For each of ``modules``, which of ``heavy`` importing it alone loads (torch counts as
    loaded: the children are forked after it)."""
    out = _python(_PER_MODULE.format(heavy=tuple(heavy), modules=tuple(modules)), cwd)
    return dict(json.loads(line) for line in out.splitlines() if line.startswith("["))


def _python(code: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
