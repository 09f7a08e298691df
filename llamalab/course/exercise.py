"""The exercises' comparator: `check(answer, expected)` says right, or how far off and a hint —
never the expected value, unless asked (`reveal=True`, or the workbook after three wrong tries).

check(my_answer, measured_value, rel=0.1, hint="decode speed is bandwidth ÷ bytes per token")
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

NOT_ANSWERED = "not answered yet: replace the `...` with your answer and run the cell again."

# Ratios that say "wrong unit" rather than "wrong idea" (answer ÷ expected).
_UNIT_SLIPS = {
    1e3: "MB vs GB, or ms vs s?",
    1e6: "bytes vs MB, or tokens vs million tokens?",
    1e9: "bytes vs GB?",
    2**30 / 1e9: "GiB vs GB? 1 GiB = 2³⁰ bytes = 1.074 GB.",
    8.0: "bits vs bytes?",
    100.0: "a fraction vs a percentage?",
}


@dataclass(frozen=True)
class Checked:
    """One checked answer; shows as a line in a notebook and is truthy when right."""

    right: bool
    message: str
    answered: bool = True

    def __bool__(self) -> bool:
        return self.right

    def __repr__(self) -> str:
        return self.message

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.right else ("#9a6700" if not self.answered else "#cf222e")
        text = self.message.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br>")
        return f'<div style="color:{colour}">{text}</div>'


def unanswered(answer) -> bool:
    """The placeholder (`...`) or None: the learner has not answered yet."""
    return answer is None or answer is ...


def check(
    answer,
    expected,
    *,
    rel: float = 0.0,
    abs: float = 0.0,
    why: str = "",
    hint: str = "",
    reveal: bool = False,
) -> Checked:
    """Compare a learner's answer with the expected value (numbers within rel/abs tolerance, else
    ==). Right: ✓ and `why`. Wrong: how far off (numbers) and `hint`, the value only with reveal."""
    if unanswered(answer):
        return Checked(False, f"… {NOT_ANSWERED}", answered=False)
    ok = _close(answer, expected, rel, abs) if is_number(expected) else answer == expected
    if ok:
        return Checked(True, f"✓ right: {answer!r}" + (f" — {why}" if why else ""))
    parts = [f"✗ not yet: {answer!r} — {off_by(answer, expected)}"]
    if hint:
        parts.append(f"Hint: {hint}")
    if reveal:
        tol = f" (within {rel:.0%})" if rel else (f" (±{abs})" if abs else "")
        parts.append(f"The expected answer is {expected!r}{tol}" + (f": {why}" if why else "."))
    return Checked(False, "\n".join(parts))


def off_by(answer, expected) -> str:
    """How a wrong answer misses, without giving the expected value away."""
    if not is_number(expected):
        return "not this one."
    if not is_number(answer):
        return f"a number is expected, not {type(answer).__name__}."
    if expected == 0 or answer == 0:
        return "too high." if answer > expected else "too low."
    ratio = float(answer) / float(expected)
    if ratio < 0:
        return "the sign is wrong."
    big = max(ratio, 1 / ratio)
    side = "too high" if ratio > 1 else "too low"
    for factor, slip in _UNIT_SLIPS.items():
        if math.isclose(big, factor, rel_tol=0.03):
            return f"{side} by a factor of {factor:.4g}: {slip} Check the units."
    if big < 1.5:
        return f"{side} by about {100 * abs(ratio - 1):.0f} %."
    return f"{side} by about {big:.1f}×."


def is_number(x) -> bool:
    """An int or float, not a bool (True == 1 would pass a numeric check)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _close(answer, expected, rel, abs_) -> bool:
    if not is_number(answer):
        return False
    return math.isclose(float(answer), float(expected), rel_tol=rel, abs_tol=abs_)
