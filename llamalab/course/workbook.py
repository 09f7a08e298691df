"""A notebook's exercises: `ex = exercises("00")`, then `ex.check(1, answer_1)` in the notebook.

Each notebook's exercises — what is checked, the hints, and the solutions — live beside the
course in `llamalab/course/solutions/` (one file per notebook), never in the notebook. The
notebook stores each answer as the placeholder `...`; with the environment switch
`LLAMALAB_SOLUTIONS=1` (what the course's tests set) a placeholder is answered from the solutions
file, so CI runs every exercise and a learner never sees the answer next to the question. Four
kinds: *compute* (one right value), *predict, then measure* (a prediction written before the cell
that measures, the gap explained), *decide under constraints* (any choice the kit's numbers accept
is right) and *change and observe* (the direction of an effect, predicted, then observed).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import LlamalabError
from .exercise import NOT_ANSWERED, Checked, check, is_number, unanswered

SOLUTIONS_ENV = "LLAMALAB_SOLUTIONS"
TRIES = 3  # wrong tries before a compute or decide exercise shows its answer
KINDS = {
    "compute": "compute",
    "predict": "predict, then measure",
    "decide": "decide under constraints",
    "change": "change and observe",
}
DIRECTIONS = ("up", "down", "same")


class ExercisesFailed(LlamalabError):
    """Under the solutions switch, an exercise whose solution its own check does not accept."""


def solutions_on() -> bool:
    """True when `LLAMALAB_SOLUTIONS` is set to 1 / true / yes (the course's tests set it)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Exercise:
    """One exercise: its kind, how an answer is judged, and its solution (both get the values the
    notebook passes, `**given`). `timing`: its measurement moves with how busy the machine is, so
    the course's tests show its result but do not require it."""

    kind: str
    judge: Callable[..., Checked]  # (answer, reveal, **given) -> Checked
    solution: Callable[..., Any]  # (**given) -> an answer
    timing: bool = False
    reveals: bool = True  # shows its answer after TRIES wrong tries (compute, decide)


@dataclass
class Workbook:
    """The exercises of one notebook, with the learner's tries and latest results."""

    notebook: str
    source: str
    items: dict[int, Exercise]
    wrong: dict[int, int] = field(default_factory=dict)
    results: dict[int, Checked] = field(default_factory=dict)

    def check(self, n: int, answer, *, reveal: bool = False, **given) -> Checked:
        """Judge exercise `n`'s answer (the placeholder `...` is answered from the solutions
        file under the switch); `given`: the values the notebook measured that it needs."""
        ex = self._exercise(n)
        note = ""
        if unanswered(answer) and solutions_on():
            answer, note = ex.solution(**given), f" [answer from {self.source}]"
        tries_out = ex.reveals and self.wrong.get(n, 0) + 1 >= TRIES
        result = ex.judge(answer, reveal or tries_out, **given)
        if result.answered and not result.right:
            self.wrong[n] = self.wrong.get(n, 0) + 1
            if ex.reveals and not (reveal or tries_out):
                left = TRIES - self.wrong[n]
                result = Checked(
                    False,
                    f"{result.message}\nTry again: {left} more wrong "
                    f"{'try' if left == 1 else 'tries'} and the answer is shown "
                    f"(or `ex.check({n}, answer, reveal=True)`).",
                )
        head = f"Exercise {n} · {KINDS[ex.kind]}{note}\n"
        result = Checked(result.right, head + result.message, result.answered)
        self.results[n] = result
        return result

    def done(self) -> Checked:
        """The tally. Under the solutions switch, raise if an exercise was not run or its
        solution failed its check (timing ones excepted: they are shown, not required)."""
        missing = [n for n in self.items if n not in self.results]
        failed = [
            n
            for n, r in self.results.items()
            if not r and not (self.items[n].timing and r.answered)
        ]
        if solutions_on() and (missing or failed):
            raise ExercisesFailed(
                f"{self.notebook}: exercises not run {missing}, solutions not accepted {failed}.",
                f"Run every exercise cell; make {self.source} and its checks agree.",
            )
        right = sum(bool(r) for r in self.results.values())
        todo = [n for n, r in self.results.items() if not r.answered] + missing
        message = f"{right} of {len(self.items)} exercises right" + (
            f"; not answered yet: {', '.join(map(str, sorted(todo)))}" if todo else ""
        )
        return Checked(right == len(self.items), message, answered=not todo)

    def _exercise(self, n: int) -> Exercise:
        if n not in self.items:
            raise LlamalabError(
                f"{self.notebook} has no exercise {n}.",
                f"Its exercises are {', '.join(map(str, self.items))}.",
            )
        return self.items[n]


def exercises(notebook: str) -> Workbook:
    """The workbook of a course notebook, by its number or name: `exercises("00")`."""
    from .solutions import BY_NUMBER

    number = str(notebook)[:2]
    if number not in BY_NUMBER:
        raise LlamalabError(
            f"No exercises for notebook {notebook!r}.",
            f"The course's notebooks with exercises: {', '.join(BY_NUMBER)}.",
        )
    module = importlib.import_module(f"{__package__}.solutions.{BY_NUMBER[number]}")
    source = f"llamalab/course/solutions/{BY_NUMBER[number]}.py"
    return Workbook(f"notebook {number}", source, dict(module.EXERCISES))


# ---- the four kinds: each returns an Exercise --------------------------------------------------


def compute(
    expected: Callable[..., Any],
    solution: Callable[..., Any],
    *,
    rel: float = 0.0,
    abs: float = 0.0,
    why: str = "",
    hint: str = "",
) -> Exercise:
    """One right value, computed by the kit (`expected(**given)`), within rel/abs."""

    def judge(answer, reveal, **given):
        if unanswered(answer):
            return check(answer, None)
        return check(answer, expected(**given), rel=rel, abs=abs, why=why, hint=hint, reveal=reveal)

    return Exercise("compute", judge, solution)


def predict(
    solution: Callable[..., Any],
    *,
    within: float,
    why: str,
    unit: str = "",
    timing: bool = False,
) -> Exercise:
    """A number predicted before the cell that measures it; the notebook passes `measured=`.
    Close means within a factor `within`; either way the gap is explained by `why`."""

    def judge(answer, reveal, *, measured, **_):
        if unanswered(answer):
            return Checked(False, f"… {NOT_ANSWERED}", answered=False)
        if not is_number(answer):
            return Checked(False, f"✗ a number is expected, not {answer!r}.")
        if answer <= 0 or measured <= 0:
            close, gap = False, "a prediction and a measurement of this are both positive"
        else:
            ratio = float(answer) / float(measured)
            far = max(ratio, 1 / ratio)
            close = far <= within
            side = "above" if ratio > 1 else "below"
            gap = (
                "within 1 % of the measurement"
                if far < 1.01
                else f"{100 * (far - 1):.0f} % {side} the measurement"
                if far < 1.5
                else f"{far:.1f}× {side} the measurement"
            )
        mark = "✓ close" if close else "✗ far off"
        return Checked(
            close,
            f"{mark}: you predicted {answer:.3g}{unit}, measured {measured:.3g}{unit} — "
            f"{gap} (close means within {within:g}×).\nWhy: {why}",
        )

    return Exercise("predict", judge, solution, timing=timing, reveals=False)


def decide(
    verdict: Callable[..., tuple[bool, str]],
    solution: Callable[..., Any],
    *,
    need: str,
    hint: str = "",
) -> Exercise:
    """A choice under constraints: `verdict(choice, **given)` says whether it meets `need`, with
    the kit's numbers; any choice that meets it is right."""

    def judge(answer, reveal, **given):
        if unanswered(answer):
            return Checked(False, f"… {NOT_ANSWERED}", answered=False)
        try:
            ok, numbers = verdict(answer, **given)
        except (LlamalabError, TypeError, ValueError) as e:
            ok, numbers = False, f"the kit cannot size it: {e}"
        if ok:
            return Checked(
                True,
                f"✓ {answer!r} meets the need ({need}): {numbers}.\n"
                "Other choices can meet it too: which would you defend, and why?",
            )
        lines = [f"✗ {answer!r} does not meet the need ({need}): {numbers.rstrip('.')}."]
        if hint:
            lines.append(f"Hint: {hint}")
        if reveal:
            lines.append(f"One choice that meets it: {solution(**given)!r}.")
        return Checked(False, "\n".join(lines))

    return Exercise("decide", judge, solution)


def change(
    solution: Callable[..., Any],
    *,
    why: str,
    same_within: float = 0.02,
    timing: bool = False,
) -> Exercise:
    """The direction of an effect ("up", "down" or "same"), predicted before a change and checked
    against what the notebook observed: `before=` and `after=`."""

    def judge(answer, reveal, *, before, after, **_):
        if unanswered(answer):
            return Checked(False, f"… {NOT_ANSWERED}", answered=False)
        if answer not in DIRECTIONS:
            return Checked(
                False, f"✗ answer one of {', '.join(map(repr, DIRECTIONS))}, not {answer!r}."
            )
        seen = direction(before, after, same_within)
        factor = f" (×{after / before:.3g})" if before else ""
        said = "as you predicted" if answer == seen else f"you predicted {answer!r}"
        went = "it stayed the same" if seen == "same" else f"it went {seen}"
        return Checked(
            answer == seen,
            f"{'✓' if answer == seen else '✗'} {went}, {said}: "
            f"{before:.4g} → {after:.4g}{factor}.\nWhy: {why}",
        )

    return Exercise("change", judge, solution, timing=timing, reveals=False)


def direction(before: float, after: float, same_within: float) -> str:
    """ "up", "down" or "same" (a relative change within `same_within`)."""
    if abs(after - before) <= same_within * max(abs(before), abs(after)):
        return "same"
    return "up" if after > before else "down"
