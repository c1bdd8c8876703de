"""Reading what a search stored, and what a person does with it.

- ``tables``: load a stored study; trials, leaderboard, per-epoch history as DataFrames;
- ``retrain``: train a stored trial again as it ran;
- ``plots`` and ``report``: figures and a report folder for one study;
- ``manual`` and ``compare``: hand-picked configs against the search;
- ``export``: the best trial's model, and predicting with it;
- ``dashboard``: optuna-dashboard on the storage.
"""
