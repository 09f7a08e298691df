"""Automatic checks for the course's exercises: `check(answer, expected)` says right
or wrong, and why.

check(my_answer, measured_value, rel=0.1, why="decode speed is bandwidth ÷ bytes per token")
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Checked:
    """One checked answer; shows as a line in a notebook and is truthy when right."""

    right: bool
    message: str

    def __bool__(self) -> bool:
        return self.right

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.right else "#cf222e"
        return f'<div style="color:{colour}">{self.message}</div>'


def check(answer, expected, *, rel: float = 0.0, abs: float = 0.0, why: str = "") -> Checked:
    """Compare a learner's answer with the expected value (numbers within rel/abs
    tolerance, else ==)."""
    if answer is None or answer is ...:
        return Checked(
            False, "✗ not answered yet: replace the placeholder with your answer and run the cell."
        )
    ok = _close(answer, expected, rel, abs) if _is_number(expected) else answer == expected
    if ok:
        return Checked(True, f"✓ right: {answer!r}" + (f" — {why}" if why else ""))
    tol = f" (within {rel:.0%})" if rel else (f" (±{abs})" if abs else "")
    return Checked(
        False,
        f"✗ not quite: you answered {answer!r}, expected {expected!r}{tol}"
        + (f". Hint: {why}" if why else "."),
    )


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _close(answer, expected, rel, abs_) -> bool:
    if not _is_number(answer):
        return False
    return math.isclose(float(answer), float(expected), rel_tol=rel, abs_tol=abs_)
