"""Progress output: a bar on a terminal, a handful of plain lines in a log."""

from __future__ import annotations

import io
import threading

import pytest

from hpo.train.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("total", [1, 3, 30, 1000])
def test_piped_progress_prints_at_most_five_lines(total: int) -> None:
    log = io.StringIO()
    progress = Progress(total, "study", unit="trial", stream=log)
    for done in range(1, total + 1):
        progress.update(done, note=f"best R² {done / total:.4f}")
    progress.close()
    lines = log.getvalue().splitlines()
    assert lines[0] == f"study: {total} trial{'s' if total > 1 else ''} to run"
    assert lines[-1].startswith(f"study: {total}/{total} trial") and "best R² 1.0000" in lines[-1]
    assert 2 <= len(lines) <= 5 and "\r" not in log.getvalue()


def test_progress_counts_from_what_was_done_before() -> None:
    log = io.StringIO()
    progress = Progress(60, "lr-cosine", unit="trial", initial=30, stream=log)
    progress.update(60)
    assert log.getvalue().splitlines() == [
        "lr-cosine: 30 trials to run (30 done before)", log.getvalue().splitlines()[-1]]
    assert log.getvalue().splitlines()[-1].startswith("lr-cosine: 60/60 trials")


def test_a_terminal_gets_a_bar_and_disabled_progress_prints_nothing() -> None:
    terminal, quiet = _Terminal(), io.StringIO()
    bar = Progress(4, "study", unit="trial", stream=terminal)
    bar.update(2, "best R² 0.9")
    bar.close()
    assert "\r" in terminal.getvalue() and "2/4" in terminal.getvalue()
    off = Progress(4, "study", unit="trial", stream=quiet, enabled=False)
    off.update(4)
    off.close()
    assert quiet.getvalue() == ""


def test_a_bar_starts_no_monitor_thread() -> None:
    """tqdm's monitor thread would outlive the bar, and a process running another thread
    spawns its workers instead of forking them (hpo.runners.processes.start_method)."""
    from tqdm._monitor import TMonitor

    bar = Progress(4, "study", unit="trial", stream=_Terminal())
    bar.update(2)
    ours = type(bar._bar)
    bar.close()
    assert not [thread for thread in threading.enumerate()
                if isinstance(thread, TMonitor) and thread.tqdm_cls is ours]
