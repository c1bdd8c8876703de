"""Running a study: never imports the results side.

- ``optuna_runner``: ``run(study, RunOptions)``, worker processes sharing one storage
  (``RunOptions(runner="ray")`` hands the study to the Ray runner), put together from
  ``options`` (``RunOptions``: every default and every check), ``study_setup`` (the study
  created or resumed in its storage), ``processes`` (worker processes: start, wait,
  errors), ``asking`` (how many trials a worker asks, tickets, samplers per worker) and
  ``worker_loop`` (one worker's loop);
- ``ray_runner``, ``ray_actor``, ``ray_cluster``, ``asha``: the Ray runner: the driver keeps
  the Optuna study, long-lived actors train; the only modules that import Ray;
- ``trials``: one trial from claim to end, and recovering the trials of dead workers;
  ``population``: a batch of trials trained as populations;
- ``preflight``: what is checked before any worker starts; ``faults``: how trials fail;
- ``devices``: which device and how many torch threads each worker gets
  (set with ``hpo.train.threads.torch_threads``);
- ``progress``: the progress bar.
"""
