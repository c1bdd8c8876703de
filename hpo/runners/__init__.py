"""Running a study: never imports the results side.

- ``optuna_runner``: ``run(study, RunOptions)``, worker processes sharing one storage;
- ``trials``: one trial from claim to end, and recovering the trials of dead workers;
- ``devices``: which device and how many threads each worker gets;
- ``samplers``: Optuna samplers and pruners by name;
- ``progress``: the progress bar.
"""
