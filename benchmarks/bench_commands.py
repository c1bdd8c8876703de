"""Whole ``hpo`` commands, the baseline tree against this one, side by side.

Each timed run is a fresh ``python -m hpo.cli …`` process (interpreter start and imports
included) in a fresh temporary folder, with ``PYTHONPATH=<tree>`` and the tree's own copy
of the study files. The trees alternate within each repeat (old first on even repeats, new
first on odd ones), so load from other jobs on a shared machine falls on both alike; the
figure to read is the ratio old/new, the median of the per-repeat ratios.

``compare``, ``report`` and ``export`` need stored studies: each tree first runs
``hpo run studies/lr_schedules.py --workers 1`` once, untimed (one in-process worker, so the
stored studies are the same bits run to run and the two trees' compare verdicts can be
checked number for number), and every timed run gets its own copy of that journal: compare
stores its hand-picked runs and reuses them, so no run may see a previous one's.

    PYTHONPATH=. .venv/bin/python -u benchmarks/bench_commands.py --repeats 3
    PYTHONPATH=. .venv/bin/python -u benchmarks/bench_commands.py --repeats 3 --load 2

``--load K`` keeps K CPU-bound processes (``while True: pass``) running while the commands
are timed; they are stopped at the end, on Ctrl-C or an error, and stop themselves if this
script dies. ``--quick`` runs fewer trials and seeds, for a smoke run of a few minutes.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
FAMILIES = ("exponential", "step", "cosine")
# A burner spins until its parent is gone, so a killed benchmark leaves no load behind.
_BURN = ("import os\np = os.getppid()\nwhile os.getppid() == p:\n"
         "    for _ in range(10**6):\n        pass\n")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


@dataclass(frozen=True)
class Command:
    """One timed ``hpo`` command: its arguments and whether it runs on a prepared storage."""

    name: str
    args: tuple[str, ...]
    prepared: bool


def commands(quick: bool) -> list[Command]:
    """The commands timed; study-file paths are relative to the tree (the tree's own copy)."""
    trials = ("--n-trials", "6") if quick else ()
    return [
        Command("compare", ("compare", "studies/homework_manual.toml",
                            *(f"lr-{f}" for f in FAMILIES),
                            *(("--seeds", "2", "--top", "1") if quick else ("--seeds", "5"))),
                prepared=True),
        Command("run", ("run", "studies/lr_schedules.py", *trials), prepared=False),
        Command("report", ("report", "lr-cosine"), prepared=True),
        Command("export", ("export", "lr-cosine", "--out", "m.pt"), prepared=True),
    ]


def main() -> None:
    args = _parse()
    trees = {"old": Path(args.trees[0]).resolve(), "new": Path(args.trees[1]).resolve()}
    chosen = _chosen(commands(args.quick), args.only)
    print(f"command: python {' '.join(sys.argv)}\ndate: {datetime.datetime.now():%Y-%m-%d %H:%M}"
          f"\nload average {_load()} (before); background load: {args.load} process(es)")
    for side, tree in trees.items():
        _check_tree(tree)
        print(f"{side}: {tree} ({_revision(tree)})")
    for command in chosen:
        print(f"{command.name:8s} PYTHONPATH=<tree> python -m hpo.cli {' '.join(command.args)}"
              + ("   (on a copy of the prepared storage)" if command.prepared else ""))
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # `kill` cleans up as Ctrl-C
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as scratch:
        journals = {}
        if any(c.prepared for c in chosen):
            journals = {side: _prepare(tree, Path(scratch) / side, args.quick)
                        for side, tree in trees.items()}
        with _background_load(args.load):
            seconds, outputs = _timed_loop(chosen, trees, journals, args.repeats, Path(scratch))
            print(f"load average {_load()} (after the timed runs)")
    _summary(chosen, seconds)
    if "compare" in outputs:
        _check_verdicts(outputs["compare"])


def _check_tree(tree: Path) -> None:
    # The venv installs /work/main editable: a wrong path would silently time that one.
    # From "/", as the commands run from an empty folder: `-c` puts the working folder first.
    out = subprocess.run([sys.executable, "-c", "import hpo; print(hpo.__file__)"], cwd="/",
                         env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True,
                         text=True)
    if not out.stdout.strip().startswith(str(tree)):
        sys.exit(f"--trees: {tree} should hold the package hpo, but `import hpo` with "
                 f"PYTHONPATH={tree} gave {out.stdout.strip() or out.stderr.strip()!r}; "
                 "give a checkout's root.")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs=2, metavar=("OLD", "NEW"),
                        default=["/work/old", str(HERE)],
                        help="the two checkouts' roots (default: /work/old and this one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--load", type=int, default=0,
                        help="CPU-bound background processes while timing (0: idle)")
    parser.add_argument("--only", help="comma-separated commands: compare,run,report,export")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 6 trials a study; compare: 2 seeds, --top 1")
    return parser.parse_args()


def _chosen(every: list[Command], only: str | None) -> list[Command]:
    if only is None:
        return every
    names = [c.name for c in every]
    wanted = only.split(",")
    unknown = [name for name in wanted if name not in names]
    if unknown:
        sys.exit(f"--only: unknown command(s) {unknown}; valid names are {names}.")
    return [c for c in every if c.name in wanted]


def _timed_loop(chosen: list[Command], trees: dict[str, Path], journals: dict[str, Path],
                repeats: int, scratch: Path
                ) -> tuple[dict[str, dict[str, list[float]]], dict[str, list[dict[str, str]]]]:
    """Seconds per command per side (one per repeat), and compare.md of each repeat."""
    seconds = {c.name: {side: [] for side in trees} for c in chosen}
    outputs: dict[str, list[dict[str, str]]] = {}
    for repeat in range(repeats):
        for command in chosen:
            order = list(trees) if repeat % 2 == 0 else list(trees)[::-1]
            texts: dict[str, str] = {}
            for side in order:
                folder = scratch / f"r{repeat}-{command.name}-{side}"
                folder.mkdir()
                if command.prepared:
                    shutil.copy(journals[side], folder / "hpo.journal")
                took = _run(trees[side], command.args, folder)
                seconds[command.name][side].append(took)
                print(f"#{repeat} {command.name:8s} {side}: {took:7.2f} s", flush=True)
                if command.name == "compare" and (folder / "compare/compare.md").is_file():
                    texts[side] = (folder / "compare/compare.md").read_text(encoding="utf-8")
                shutil.rmtree(folder)
            outputs.setdefault(command.name, []).append(texts)
    return seconds, outputs


def _run(tree: Path, args: tuple[str, ...], folder: Path) -> float:
    """Seconds of one whole command; NaN (and its output's tail printed) if it fails."""
    argv = [sys.executable, "-m", "hpo.cli", *_in_tree(tree, args)]
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=folder, env={**os.environ, "PYTHONPATH": str(tree)},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - start
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
        print(f"  FAILED (exit {done.returncode}): {' '.join(argv)}\n  " + "\n  ".join(tail))
        return float("nan")
    return took


def _in_tree(tree: Path, args: tuple[str, ...]) -> list[str]:
    # The tree's own study files: the working folder is a temporary one.
    return [str(tree / a) if a.startswith("studies/") else a for a in args]


def _prepare(tree: Path, folder: Path, quick: bool) -> Path:
    """The three homework studies stored by ``tree``, untimed; the journal's path."""
    folder.mkdir(parents=True)
    args = ("run", "studies/lr_schedules.py", "--workers", "1",
            *(("--n-trials", "6") if quick else ()))
    took = _run(tree, args, folder)
    journal = folder / "hpo.journal"
    if math.isnan(took) or not journal.is_file():
        sys.exit(f"preparing {tree}: `hpo run` failed or stored no journal; see above.")
    print(f"prepared in {tree}: hpo {' '.join(args)}, {took:.1f} s (untimed)", flush=True)
    return journal


@contextmanager
def _background_load(processes: int) -> Iterator[None]:
    burners = [subprocess.Popen([sys.executable, "-c", _BURN]) for _ in range(processes)]
    try:
        yield
    finally:
        for burner in burners:
            burner.terminate()
        for burner in burners:
            try:
                burner.wait(timeout=5)
            except subprocess.TimeoutExpired:
                burner.kill()
                burner.wait()


def _summary(chosen: list[Command], seconds: dict[str, dict[str, list[float]]]) -> None:
    print("\ncommand   old s (median)  new s (median)  old/new (median of the repeats' ratios)")
    for command in chosen:
        old, new = seconds[command.name]["old"], seconds[command.name]["new"]
        ratios = [o / n for o, n in zip(old, new, strict=True)]
        ratio = statistics.median(ratios)
        print(f"{command.name:8s} {statistics.median(old):14.2f}  {statistics.median(new):14.2f}"
              f"  {ratio:.2f}x  ({', '.join(f'{r:.2f}' for r in ratios)})")


def _check_verdicts(repeats: list[dict[str, str]]) -> None:
    """Whether each family's compare.md rows (verdict, test scores, search) agree."""
    print("\ncompare.md, old against new, family by family:")
    for repeat, texts in enumerate(repeats):
        if set(texts) != {"old", "new"}:
            print(f"#{repeat} compare.md missing on {sorted({'old', 'new'} - set(texts))}")
            continue
        for family in FAMILIES:
            old, new = _family_rows(texts["old"], family), _family_rows(texts["new"], family)
            print(f"#{repeat} {family:12s} {_agreement(old, new)}")


def _family_rows(text: str, family: str) -> list[str]:
    """The Markdown table rows of one family (a cell is exactly its name)."""
    return [line for line in text.splitlines() if line.startswith("|")
            and family in (cell.strip() for cell in line.strip("|").split("|"))]


def _agreement(old: list[str], new: list[str]) -> str:
    words = [_NUMBER.sub("#", line) for line in old], [_NUMBER.sub("#", line) for line in new]
    if words[0] != words[1]:
        return "DIFFERENT text:\n  old " + "\n  old ".join(old) + "\n  new " + "\n  new ".join(new)
    numbers = [(float(a), float(b)) for o, n in zip(old, new, strict=True)
               for a, b in zip(_NUMBER.findall(o), _NUMBER.findall(n), strict=True)]
    differ = [(a, b) for a, b in numbers if a != b]
    verdict = next((line.rsplit("|", 2)[-2].strip() for line in old), "")
    if not differ:
        return f"agree ({len(numbers)} numbers, {len(old)} rows): {verdict}"
    pairs = ", ".join(f"{a:g}/{b:g}" for a, b in differ[:8])
    return (f"{len(differ)} of {len(numbers)} numbers differ (old/new: {pairs}"
            f"{' …' if len(differ) > 8 else ''}), max abs difference "
            f"{max(abs(a - b) for a, b in differ):.2g}; verdict: {verdict}")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _revision(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "not a git checkout"


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the burners and the running command are already stopped
        sys.exit("interrupted")
