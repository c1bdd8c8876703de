"""Where studies live.

- ``storage``: a storage URL or path in, an Optuna storage out;
- ``journal``: the default journal file, repaired after a kill;
- ``optuna_internals``: every private Optuna name the storage relies on, in one place;
- ``attrs``: the one reader and writer of what hpo keeps on trials and studies (history,
  params, the study record, the held-out score), and which of it the dashboard shows;
- ``record``: what a stored study remembers of its data, split and score;
- ``summary``: counts of trials by state and the best value of a stored study.
"""
