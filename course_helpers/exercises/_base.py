"""Shared reporting for exercise checks, and the worked solutions for self-study."""
from __future__ import annotations

import textwrap

#: name -> worked solution (source text), filled by each lesson module with :func:`solution_text`.
SOLUTIONS: dict = {}


def report(ok: bool, right: str = "Right!", hint: str = "Not yet.") -> bool:
    """Print a verdict for the learner and return it (tests assert on the return value)."""
    print(("✅ " + right) if ok else ("❌ " + hint))
    return bool(ok)


def is_missing(answer) -> bool:
    """True for the placeholder ``...`` or None: the learner has not answered yet."""
    return answer is Ellipsis or answer is None


def call_learner(fn, *args, returns: str = "the result"):
    """Run the learner's function ``fn(*args)``: ``(result, None)``, or ``(None, hint)`` saying
    what went wrong (no function, an exception, still ``...``), never the answer."""
    if is_missing(fn) or not callable(fn):
        return None, "Write a function (def my_...(...): ...) and pass the function itself."
    try:
        got = fn(*args)
    except Exception as err:  # the learner's code failed: show why, not the answer
        return None, f"Your function raised {type(err).__name__}: {err}"
    if is_missing(got):
        return None, f"Your function still returns ...: return {returns}."
    return got, None


def solution_text(name: str, source: str) -> None:
    """Register the worked solution of exercise ``name`` (plain code a learner can run)."""
    SOLUTIONS[name] = textwrap.dedent(source).strip("\n") + "\n"


def solution(name: str) -> str:
    """Print (and return) the worked solution of exercise ``name``, for self-study.

    ``ch.exercises.solution("smoothgrad")``; ``ch.exercises.solutions()`` lists the names.
    """
    if not isinstance(name, str) or name not in SOLUTIONS:
        known = ", ".join(sorted(SOLUTIONS)) or "(none yet)"
        raise ValueError(f"solution(name): no exercise called {name!r}. Pick one of: {known}.")
    print(SOLUTIONS[name], end="")
    return SOLUTIONS[name]


def solutions() -> list:
    """The names :func:`solution` accepts."""
    return sorted(SOLUTIONS)
