"""Exercise checks: ``ch.exercises.check_...(answer)`` says "right" or gives a hint, never the answer.

One module per lesson (``lesson01.py`` ...); every check returns True/False and prints a
short message, so a notebook cell shows it and a test can assert on it.
Each lesson module also registers a worked solution per exercise
(``_base.solution_text(name, source)``); ``ch.exercises.solution(name)`` prints it.
"""
from __future__ import annotations

import importlib
import pkgutil

from ._base import report, solution, solutions  # noqa: F401

__all__ = ["report", "solution", "solutions"]
for _info in pkgutil.iter_modules(__path__):
    if _info.name.startswith("lesson"):
        _mod = importlib.import_module(f".{_info.name}", __name__)
        for _name in getattr(_mod, "__all__", []):
            globals()[_name] = getattr(_mod, _name)
            __all__.append(_name)
