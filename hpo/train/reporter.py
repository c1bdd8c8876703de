"""How training code talks back to whatever runs it: a Reporter.

The objective knows nothing of Optuna or Ray. Every epoch it calls ``report(epoch, metrics)``;
a runner's reporter forwards the test R² to its pruner and raises that runner's own
"stop this trial" exception when the trial should end early. ``record(attrs)`` attaches the
trial's attributes (scheduler family, parameter count, seconds, device, ...), listed in
docs/architecture.md.

Example:
    >>> reporter = MemoryReporter()
    >>> reporter.report(1, {"test_r2": 0.5})
    >>> reporter.record({"family": "cosine"})
    >>> reporter.history, reporter.attrs
    ([{'epoch': 1, 'test_r2': 0.5}], {'family': 'cosine'})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# The metric every reporter hands to its pruner: the course scores by test R².
PRUNING_METRIC = "test_r2"


class Reporter(Protocol):
    """What an objective may call. Implementations decide whether to prune."""

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record one epoch's metrics; raise to stop the trial when the search says so."""

    def record(self, attrs: Mapping[str, Any]) -> None:
        """Attach attributes (JSON-serializable values) to the trial."""


class MemoryReporter:
    """Keeps every epoch's metrics and every attribute in memory, and never prunes.

    Used to train a configuration outside any search (``hpo compare``, scripts, tests), and
    as the base of the runners' reporters, which add pruning and storage on top.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []
        self.attrs: dict[str, Any] = {}

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.history.append({"epoch": epoch, **metrics})

    def record(self, attrs: Mapping[str, Any]) -> None:
        self.attrs.update(attrs)
