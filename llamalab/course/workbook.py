"""A notebook's exercises: `ex = exercises("00")`, then `ex.check(1, answer_1)` in the notebook.

Each notebook's exercises — what is checked, the hints, and the solutions — live beside the
course in `llamalab/course/solutions/` (one file per notebook), never in the notebook. The
notebook stores each answer as the placeholder `...`; with the environment switch
`LLAMALAB_SOLUTIONS=1` (what the course's tests set) a placeholder is answered from the solutions
file, so CI runs every exercise and a learner never sees the answer next to the question. Four
kinds: *compute* (one right value), *predict, then measure* (a prediction written before the cell
that measures, the gap explained), *decide under constraints* (any choice the kit's numbers accept
is right) and *change and observe* (the direction of an effect, predicted, then observed).

The notebooks' own self-checks on what they measured are `expect(condition, what, why_if_not)`: a
learner sees ✓ or ✗ with what a ✗ means (never a bare AssertionError); under the same switch
(the course's tests) a ✗ raises `CheckFailed` with the same words. Where `LLAMALAB_CHECKS_LOG` names
a file (the course's tests set it; a learner never does) each check is also appended to it as one
JSON line, so docs/guide-claims.md's test can require that each asserted claim's check ran and held.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import LlamalabError
from .exercise import NOT_ANSWERED, Checked, check, is_number, unanswered

SOLUTIONS_ENV = "LLAMALAB_SOLUTIONS"
CHECKS_LOG_ENV = "LLAMALAB_CHECKS_LOG"  # a JSON-lines file the course's tests read; unset: none
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


class CheckFailed(LlamalabError):
    """Under the solutions switch (the course's tests), a notebook's self-check that failed."""


def solutions_on() -> bool:
    """True when `LLAMALAB_SOLUTIONS` is set to 1 / true / yes (the course's tests set it)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes")


BUSY = (
    "If you see ✗ here on a busy machine (other notebooks or jobs sharing the cores), it means the "
    "timing was disturbed, not that something is broken: close other work and rerun the cell."
)


def expect(condition, what: str, why_if_not: str = "", *, timing: bool = False) -> None:
    """A notebook's self-check on a value it computed or measured: prints ✓ `what`, or ✗ and
    `why_if_not` (what it means, what to do; `timing`: the busy-machine reading too). Under the
    solutions switch (the course's tests) a ✗ raises CheckFailed with the same words instead."""
    record_check(what, bool(condition), timing)
    if condition:
        print(f"✓ {what}")
        return
    meaning = " ".join(part for part in (why_if_not, BUSY if timing else "") if part)
    if solutions_on():
        raise CheckFailed(f"✗ not so in this run: {what}", meaning)
    print(f"✗ not so in this run: {what}" + (f"\n  {meaning}" if meaning else ""))


def record_check(what: str, ok: bool, timing: bool = False) -> None:
    """Append one self-check to the file `LLAMALAB_CHECKS_LOG` names, if any: the notebook (the
    Jupyter server's `JPY_SESSION_NAME`, which the course's tests also set for nbclient runs),
    `what` and whether it held. Nothing is written when the variable is unset (a learner's run)."""
    log = os.environ.get(CHECKS_LOG_ENV)
    if not log:
        return
    notebook = os.path.basename(os.environ.get("JPY_SESSION_NAME", ""))
    line = json.dumps({"notebook": notebook, "what": what, "ok": ok, "timing": timing})
    with open(log, "a", encoding="utf-8") as f:  # one short line per write: appends stay whole
        f.write(line + "\n")


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
    skipped: dict[int, str] = field(default_factory=dict)  # exercise -> why it cannot run here

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

    def answer(self, n: int, value, **given):
        """An answer a cell uses before its check (the learner's own training data): `value` as
        written, or under the switch a placeholder answered from the solutions file."""
        if unanswered(value) and solutions_on():
            return self._exercise(n).solution(**given)
        return value

    def skip(self, n: int, why: str) -> Checked:
        """Exercise `n` cannot run here (it measures a local load, and the room's server holds
        the model): says why; done() reports it as skipped, neither missing nor failed."""
        ex = self._exercise(n)
        self.skipped[n] = why
        self.results.pop(n, None)
        return Checked(False, f"Exercise {n} · {KINDS[ex.kind]}: skipped here — {why}", False)

    def done(self) -> Checked:
        """The tally. Under the solutions switch, raise if an exercise was neither run nor skipped,
        or its solution failed its check (timing ones excepted: they are shown, not required)."""
        missing = [n for n in self.items if n not in self.results and n not in self.skipped]
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
        counted = len(self.items) - len(self.skipped)
        message = f"{right} of {counted} exercises right"
        for label, numbers in (("not answered yet", todo), ("skipped here", self.skipped)):
            message += f"; {label}: {', '.join(map(str, sorted(numbers)))}" if numbers else ""
        return Checked(right == counted, message, answered=not todo)

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
