"""Shared reporting for exercise checks."""
from __future__ import annotations


def report(ok: bool, right: str = "Right!", hint: str = "Not yet.") -> bool:
    """Print a verdict for the learner and return it (tests assert on the return value)."""
    print(("✅ " + right) if ok else ("❌ " + hint))
    return bool(ok)


def is_missing(answer) -> bool:
    """True for the placeholder ``...`` or None: the learner has not answered yet."""
    return answer is Ellipsis or answer is None
