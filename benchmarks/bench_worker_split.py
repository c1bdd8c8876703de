"""Why 2 workers fall short of 2x on the homework: each trains populations half the size.

Runs the cosine homework study (100 trials, TPE, median pruner) with one in-process worker
(this process made a 1-core machine, as ``bench_population.py workers`` does) or with
``--workers 2``, and prints the wall time, the sum of the trials' training ``seconds`` and
the population sizes each trial trained in. Run each side in its own process, alternating:

    for w in 1 2 1 2; do PYTHONPATH=. .venv/bin/python benchmarks/bench_worker_split.py $w; done
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from bench_population import cosine_space, training_seconds

import hpo
from hpo import LabData, RunOptions, Study


def main() -> None:
    workers = int(sys.argv[1])
    if workers == 1:  # hpo's default on a 1-core machine: one in-process worker, 1 thread
        os.cpu_count = lambda: 1
    torch.set_num_threads(1)
    study = Study(name="w", space=cosine_space, data=LabData(n=1000), sampler="tpe",
                  pruner="median", n_trials=100, seed=0)
    storage = f"{tempfile.mkdtemp()}/b.journal"
    start = time.monotonic()
    trials = hpo.run(study, RunOptions(storage=storage, progress=False,
                                       workers=None if workers == 1 else workers)).trials
    wall = time.monotonic() - start
    sizes = Counter(int(t.user_attrs.get("population", 1)) for t in trials)
    print(f"workers {workers}: wall {wall:.2f} s, training sum "
          f"{sum(training_seconds(t) for t in trials):.2f} s, trials per population size "
          f"{sorted(sizes.items())} (load average {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
