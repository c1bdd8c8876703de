"""The verdict of ``hpo compare``: hand-picked configs and the search's top trials, trained
over the same seeds and scored once on the same held-out test part, and what the seeds can
tell apart.

Both sides are chosen on what the search was scored on (validation, or the CV folds): the
best hand-picked config by its mean over the seeds, the search's best trial by its value.
Only then is the test part read: every candidate is trained on every non-test row with
seeds ``0 … K-1`` and scored on test. Seed ``s`` of one side is paired with seed ``s`` of
the other (same initial-weight and batch-order draw), and the difference of the pair means
gets a paired t interval over the seeds.

Example:
    >>> diff, low, high = paired_interval([0.98, 0.97, 0.99], [0.97, 0.97, 0.98])
    >>> round(diff, 4)
    0.0067
    >>> verdict_sentence(0.004, 0.001, 0.007)
    "the search's best beats the best hand-picked config by 0.0040 R², 95% CI 0.0010 to 0.0070"
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]

from hpo.results.holdout import heldout_scores_many

LEVEL = 0.95


@dataclass(frozen=True)
class Candidate:
    """One configuration in the verdict: which side, its name, how it was chosen."""

    side: str  # "hand-picked" or "search"
    name: str
    params: Mapping[str, Any]
    chosen_r2: float  # the score it was chosen on (validation mean, or the trial's value)


def paired_interval(
    search: Sequence[float], manual: Sequence[float], level: float = LEVEL
) -> tuple[float, float, float]:
    """Mean of ``search[s] - manual[s]`` and its paired t interval (nan with one pair)."""
    diff = np.asarray(search, dtype=float) - np.asarray(manual, dtype=float)
    mean = float(diff.mean())
    if len(diff) < 2 or not np.isfinite(diff).all():
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1)
                 / math.sqrt(len(diff)))
    return mean, mean - half, mean + half


def verdict_sentence(diff: float, low: float, high: float) -> str:
    """The interval in one plain sentence."""
    if math.isnan(diff):
        return "a seed diverged: no verdict"
    if math.isnan(low):
        return "one seed gives no interval: run with --seeds 2 or more"
    ci = f"{LEVEL:.0%} CI"
    if low > 0:
        return (f"the search's best beats the best hand-picked config by {diff:.4f} R², "
                f"{ci} {low:.4f} to {high:.4f}")
    if high < 0:
        return (f"the best hand-picked config beats the search's best by {-diff:.4f} R², "
                f"{ci} {-high:.4f} to {-low:.4f}")
    return (f"no difference the seeds can resolve ({diff:+.5f} R², {ci} {low:+.5f} to "
            f"{high:+.5f})")


def score_candidates(candidates: Sequence[Candidate], record: Mapping[str, Any],
                     seeds: Sequence[int], on_run: Callable[[], None] = lambda: None
                     ) -> list[dict[str, Any]]:
    """Every candidate trained with every seed on the non-test rows, scored on test
    (``on_run`` called after each training, for a progress display)."""
    rows = []
    every = heldout_scores_many([c.params for c in candidates], record, seeds, on_run)
    for candidate, scores in zip(candidates, every, strict=True):
        finite = [s for s in scores if math.isfinite(s)]
        diverged = len(scores) - len(finite)
        rows.append({"side": candidate.side, "name": candidate.name,
                     "chosen_r2": candidate.chosen_r2, "scores": scores,
                     "test_mean": float(np.mean(scores)) if not diverged else math.nan,
                     "test_sd": float(np.std(scores, ddof=1)) if len(scores) > 1
                     and not diverged else math.nan})
    return rows


def family_verdict(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The best of each side (the first row of each: ranked by ``chosen_r2``) compared."""
    manual = next(row for row in rows if row["side"] == "hand-picked")
    search = next(row for row in rows if row["side"] == "search")
    diff, low, high = paired_interval(search["scores"], manual["scores"])
    return {"test_manual": manual["test_mean"], "test_manual_sd": manual["test_sd"],
            "test_search": search["test_mean"], "test_search_sd": search["test_sd"],
            "diff": diff, "ci_low": low, "ci_high": high,
            "verdict": verdict_sentence(diff, low, high)}
