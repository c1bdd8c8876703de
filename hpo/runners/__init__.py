"""Runners: take a Study and run its trials (Optuna; every GPU, else the CPU cores)."""

from hpo.runners.optuna import RunOptions, run

__all__ = ["RunOptions", "run"]
