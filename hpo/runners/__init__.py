"""Running a study: never imports the results side.

- ``optuna_runner``: ``run(study, RunOptions)``, worker processes sharing one storage
  (``RunOptions(runner="ray")`` hands the study to the Ray runner);
- ``ray_runner``, ``ray_actor``, ``ray_cluster``, ``asha``: the Ray runner: the driver keeps
  the Optuna study, long-lived actors train; the only modules that import Ray;
- ``trials``: one trial from claim to end, and recovering the trials of dead workers;
- ``devices``: which device and how many threads each worker gets;
- ``samplers``: Optuna samplers and pruners by name;
- ``progress``: the progress bar.
"""
