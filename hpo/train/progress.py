"""Progress of a long job (trials of a study, configs to re-train, epochs): what is being
done, how much is left, the best so far.

On a terminal it is a tqdm bar. Piped to a file, a bar would write an update line per
refresh (over a hundred for one study), so it prints a plain line when the job starts and
at each quarter of the work instead (at most one every 2 s, and always the last): at most
five lines however long the job.

Example:
    >>> progress = Progress(30, "lr-cosine", unit="trial", initial=10, enabled=False)
    >>> progress.update(20, note="best R² 0.9790")
    >>> progress.close()
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import IO

from tqdm.auto import tqdm

QUARTERS = 4
MIN_SECONDS = 2.0  # between two plain lines, but for the last: a 1-s job gets two lines


class Bar(tqdm):
    """tqdm without its monitor thread, which outlives the bar: with a thread running, the
    next run's workers could not be forked (hpo.runners.optuna_runner.start_method). The
    monitor only redraws bars left unrefreshed for long; hpo refreshes its bars itself."""

    monitor_interval = 0


class Progress:
    """Counts ``done`` (absolute) towards ``total``; ``initial`` were done before it began."""

    def __init__(self, total: int, desc: str, *, unit: str, initial: int = 0,
                 enabled: bool = True, stream: IO[str] | None = None) -> None:
        self.total, self.desc, self.unit, self.initial = total, desc, unit, initial
        self._stream = stream if stream is not None else sys.stderr
        self._enabled = enabled
        self._start = self._last = time.monotonic()
        self._done, self._next_quarter = initial, 1
        self._bar = None
        if enabled and _is_terminal(self._stream):
            # A terminal that reports no width (0 columns) would get an empty bar.
            width = min(shutil.get_terminal_size().columns or 80, 100)
            self._bar = Bar(total=total, initial=initial, desc=desc, unit=unit,
                             file=self._stream, ncols=width)
        elif enabled:
            more = total - initial
            before = f" ({initial} done before)" if initial else ""
            self._line(f"{desc}: {more} {_plural(unit, more)} to run{before}")

    def update(self, done: int, note: str = "") -> None:
        """``done`` of ``total`` are finished now; ``note`` e.g. ``"best R² 0.9790"``."""
        done = max(self.initial, min(done, self.total))
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note, refresh=True)
        elif self._enabled and done > self._done and self._crossed_quarter(done) and (
                done == self.total or time.monotonic() - self._last > MIN_SECONDS):
            self._line(self._status(done, note))
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def _crossed_quarter(self, done: int) -> bool:
        work = max(1, self.total - self.initial)
        quarter = (done - self.initial) * QUARTERS // work
        if quarter < self._next_quarter:
            return False
        self._next_quarter = quarter + 1
        return True

    def _status(self, done: int, note: str) -> str:
        elapsed = time.monotonic() - self._start
        ran = done - self.initial
        left = elapsed / ran * (self.total - done) if ran else 0.0
        timing = f"{elapsed:.0f} s" + (f", about {left:.0f} s left" if done < self.total else "")
        return (f"{self.desc}: {done}/{self.total} {_plural(self.unit, self.total)}"
                f"{', ' + note if note else ''} ({timing})")

    def _line(self, text: str) -> None:
        self._last = time.monotonic()
        print(text, file=self._stream, flush=True)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _plural(unit: str, count: int) -> str:
    return unit if count == 1 else f"{unit}s"
