"""Study files: plain Python that defines ``STUDY = Study(...)`` or ``STUDIES = [...]``.

A study file runs both as ``hpo run studies/x.py`` (loaded here) and as
``python studies/x.py`` (it ends with ``if __name__ == "__main__": hpo.cli.main_for(...)``).
Loading it runs its top level, so every mistake in it becomes a one-line StudyFileError
that names the file and line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from hpo.errors import HPOError, StudyFileError
from hpo.study.config import Study


def load_studies(path: str | Path) -> list[Study]:
    """Every study a study file defines, in the order it lists them."""
    path = Path(path)
    module = _run_file(path)
    found = _studies_in(module, path)
    return [_FileStudy(**{**_fields(s), "source": (str(path.resolve()), s.name)}) for s in found]


def load_from_file(path: str | Path, name: str) -> Study:
    """The study called ``name`` in a study file."""
    studies = load_studies(path)
    for study in studies:
        if study.name == name:
            return study
    raise StudyFileError(
        f"{path} defines no study named {name!r}; it defines "
        f"{', '.join(repr(s.name) for s in studies)}."
    )


def select_studies(studies: list[Study], names: list[str] | None) -> list[Study]:
    """The studies whose names are listed (all when none are), refusing unknown names."""
    if not names:
        return studies
    known = {s.name: s for s in studies}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StudyFileError(
            f"No study named {', '.join(map(repr, unknown))}; valid names are "
            f"{', '.join(map(repr, known))}."
        )
    return [known[n] for n in names]


def _run_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise StudyFileError(
            f"Study file {str(path)!r} not found; give the path to a .py file that defines "
            "STUDY or STUDIES (see studies/ for examples)."
        )
    module_name = f"hpo_study_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise StudyFileError(f"{path} cannot be loaded as Python; it must be a .py file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise StudyFileError(
            f"{path} line {error.lineno}: {error.msg}; fix the syntax and run again."
        ) from None
    except HPOError as error:
        raise StudyFileError(f"{path}: {error}") from None
    except SystemExit as error:  # a study file is imported, not run as a script
        raise StudyFileError(
            f"{path} line {_line_in(path, error)}: it called sys.exit({error.code!r}) while "
            "being loaded; keep script code under `if __name__ == \"__main__\":`."
        ) from None
    except Exception as error:
        raise StudyFileError(
            f"{path} line {_line_in(path, error)}: running it raised "
            f"{type(error).__name__}: {error}"
        ) from None
    return module


def _line_in(path: Path, error: BaseException) -> int | str:
    """The line of the study file where the error was raised ('?' when not in the file)."""
    frames = traceback.extract_tb(error.__traceback__)
    lines = [f.lineno for f in frames if Path(f.filename).resolve() == path.resolve()]
    return lines[-1] if lines and lines[-1] is not None else "?"


def _studies_in(module: ModuleType, path: Path) -> list[Study]:
    if hasattr(module, "STUDIES"):
        found = list(module.STUDIES)
    elif hasattr(module, "STUDY"):
        found = [module.STUDY]
    else:
        raise StudyFileError(
            f"{path} defines no study: expected a module-level `STUDY = Study(...)` or "
            "`STUDIES = [Study(...), ...]`."
        )
    wrong = [type(s).__name__ for s in found if not isinstance(s, Study)]
    if wrong or not found:
        raise StudyFileError(
            f"{path}: STUDY/STUDIES must hold hpo.Study objects, but got "
            f"{', '.join(wrong) or 'an empty list'}."
        )
    names = [s.name for s in found]
    if len(set(names)) != len(names):
        raise StudyFileError(f"{path}: study names must be unique, but got {names}.")
    return found


class _FileStudy(Study):
    """A study loaded from a study file.

    Its space function is defined in that file, which pickle cannot find by module name in a
    worker process: the worker loads the file again for the function and takes every other
    field from this copy.
    """

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        fields = _fields(self)
        del fields["space"]
        return (_reload_from_file, (fields,))


def _fields(study: Study) -> dict[str, Any]:
    return {field.name: getattr(study, field.name) for field in dataclasses.fields(study)}


def _reload_from_file(fields: dict[str, Any]) -> Study:
    path, name_in_file = fields["source"]
    return dataclasses.replace(load_from_file(path, name_in_file), **fields)
