"""pyproject.toml's bounds against constraints.txt's pins: every tested version pinned
exactly, every dependency's pin allowed by its bound, and the packages whose private
names hpo uses held to the minor version tested."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# Private names used: hpo/store/optuna_internals.py, hpo/runners/ray_*.py and asha.py,
# hpo/results/dashboard.py (optuna-dashboard's WSGI app).
BOUNDED = ("optuna", "optuna-dashboard", "ray")


def _pins() -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / "constraints.txt").read_text().splitlines()]
    pins = [line for line in lines if line and not line.startswith("#")]
    assert all(line.count("==") == 1 for line in pins), [p for p in pins if "==" not in p]
    return {canonicalize_name(line.split("==")[0]): line.split("==")[1] for line in pins}


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    return {canonicalize_name(requirement.name): requirement for requirement in found}


def test_every_dependency_is_pinned_within_its_bounds() -> None:
    pins = _pins()
    for name, requirement in _requirements().items():
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (name, pins[name])


@pytest.mark.parametrize("name", BOUNDED)
def test_private_names_are_held_to_the_minor_version_tested(name: str) -> None:
    pinned = Version(_pins()[name])
    later_minor = Version(f"{pinned.major}.{pinned.minor + 1}")
    specifier = _requirements()[name].specifier
    assert not specifier.contains(later_minor), f"{name}: bound it below {later_minor}"
