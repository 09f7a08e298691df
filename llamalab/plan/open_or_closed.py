"""Open or closed, from the answers to the guide's checklist (catalog/checklist.toml) and the cost
model: a recommendation with its reasons, each naming the answer or the number it came from.

    rec = llamalab.open_or_closed({"data_in_house": "yes", "tokens_per_month": 3e8})
    print(rec)            # the choice, then one line per reason
    rec.choice            # "open", "closed" or "either" (nothing decides it: weigh the reasons)

Needs a closed model's API cannot meet ("requires open") decide before cost does; preferences and
the cost at your volume lean one way or the other; where they lean both ways, or nowhere, the
answer is "either" and the reasons say what to weigh. A question left unanswered (`...`, None) or
answered "unsure" is listed as one to find out.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..catalog.checklist import VOLUME, Question, checklist
from ..core.errors import InvalidSetting
from .cost import API, HOSTED, SELF, CostAtScale, cost_at_scale

if TYPE_CHECKING:
    import pandas as pd

TIE = 0.05  # cost options closer than 5 %: within what the cost model's assumptions can tell apart
OPEN, CLOSED, EITHER = "open", "closed", "either"


@dataclass(frozen=True)
class Reason:
    """One line of a recommendation: the question, the answer given, where it points and why
    (with the numbers, for the volume)."""

    question: str
    answer: str
    points: str  # requires open · leans open · leans closed · neutral · unknown · ...
    why: str

    def __str__(self) -> str:
        line = f"{self.points:>15} · {self.question} = {self.answer}"
        return (
            line if self.points == "neutral" and self.question != VOLUME else f"{line}: {self.why}"
        )


@dataclass(frozen=True)
class Recommendation:
    """`choice` ("open", "closed" or "either"), the choices the answers accept (`acceptable`),
    one Reason per question, the questions still to find out, and the cost model's result."""

    choice: str
    acceptable: tuple[str, ...]
    reasons: tuple[Reason, ...]
    to_find_out: tuple[str, ...]
    cost: CostAtScale | None = field(default=None, repr=False, compare=False)

    def reason(self, question: str) -> Reason:
        """The reason that came from one question."""
        return next(r for r in self.reasons if r.question == question)

    def to_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([vars(r) for r in self.reasons])

    def __str__(self) -> str:
        head = {
            OPEN: "Open: run an open model yourself.",
            CLOSED: "Closed: a closed model's API fits these answers.",
            EITHER: "Either: nothing in these answers decides it; weigh the reasons below.",
        }[self.choice]
        lines = [head, *map(str, self.reasons)]
        if self.to_find_out:
            lines.append(f"Provisional: find out {', '.join(self.to_find_out)} before deciding.")
        return "\n".join(lines)


def open_or_closed(
    answers: dict,
    *,
    model: str = "llama-3.1-70b",
    scheme: str = "int8",
    gpu: str = "h100-80gb",
    api: str = "gpt-4o",
    tie: float = TIE,
    **cost_overrides,
) -> Recommendation:
    """Recommend open or closed from `answers` ({question id: answer}, the ids of
    `llamalab.checklist()`); the volume's reason compares, at `tokens_per_month`, the closed `api`
    with `model` under `scheme` self-hosted on `gpu` or hosted by a provider (`cost_at_scale`, with
    `cost_overrides`), calling costs closer than `tie` a tie."""
    questions = {q.id: q for q in checklist()}
    given = _parse(answers, questions)
    reasons = [_reason(q, given.get(q.id)) for q in questions.values() if not q.numeric]
    cost = None
    volume = given.get(VOLUME)
    if volume is None:
        reasons.append(Reason(VOLUME, "not answered", "unknown", questions[VOLUME].why))
    else:
        cost = cost_at_scale(model, scheme, gpu, api, tokens_per_month=[volume], **cost_overrides)
        reasons.append(_cost_reason(cost, volume, given, tie))
    return _recommend(tuple(reasons), cost)


def _parse(answers, questions: dict[str, Question]) -> dict:
    """{id: answer} with answers normalized; `...` and None are left out (not answered)."""
    if not isinstance(answers, dict):
        raise InvalidSetting(
            f"answers={str(answers)[:60]} is not a dict.",
            f"Pass {{question id: answer}}; the ids: {', '.join(questions)}.",
        )
    out = {}
    for key, value in answers.items():
        if key not in questions:
            close = difflib.get_close_matches(str(key), questions, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            raise InvalidSetting(
                f"The checklist has no question {key!r}.",
                f"{hint}Its questions: {', '.join(questions)}.",
            )
        if value is None or value is ...:
            continue
        out[key] = _answer(questions[key], value)
    return out


def _answer(q: Question, value):
    if q.numeric:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InvalidSetting(
                f"{q.id}={value!r} is not a number of tokens.", "Answer e.g. 3e8 (300 M a month)."
            )
        return float(value)
    if isinstance(value, bool) and {"yes", "no"} <= set(q.answers):
        value = "yes" if value else "no"
    text = str(value).strip().lower()
    if text not in q.answers:
        raise InvalidSetting(
            f"{q.id}={value!r} is not one of its answers.",
            f"{q.asks} Answer one of: {', '.join(map(repr, q.answers))}.",
        )
    return text


def _reason(q: Question, answer: str | None) -> Reason:
    if answer is None:
        return Reason(q.id, "not answered", "unknown", q.why)
    return Reason(q.id, answer, q.answers[answer], q.why)


def _cost_reason(cost: CostAtScale, volume: float, given: dict, tie: float) -> Reason:
    """The cost model's verdict at `volume`, among the options the other answers leave."""
    out_of_house = given.get("data_in_house") == "yes" or given.get("offline") == "yes"
    open_options = [o for o in cost.options if o != API]
    ruled_out = {SELF: given.get("run_servers") == "no", HOSTED: out_of_house}
    allowed = [o for o in open_options if not ruled_out[o]]
    best = min(allowed or [SELF], key=lambda o: cost.cost(o, volume))
    api_usd, open_usd = cost.cost(API, volume), cost.cost(best, volume)
    gap = abs(api_usd - open_usd) / max(api_usd, open_usd)
    numbers = (
        f"at {volume / 1e6:,.0f} M tokens a month {cost.label(API)} costs ${api_usd:,.0f}, "
        f"{cost.label(best)} ${open_usd:,.0f}"
    )
    skipped = [o for o in open_options if ruled_out[o] and o != best]
    if skipped:
        numbers += f" ({' and '.join(cost.label(o) for o in skipped)} left out by your answers)"
    if not allowed:
        numbers += (
            " (your answers leave no open option but self-hosting, and no team to run it: "
            "someone must run the servers)"
        )
    if gap < tie:
        return Reason(VOLUME, f"{volume:.3g}", "neutral", f"{numbers}: a tie (< {tie:.0%} apart).")
    side = "leans open" if open_usd < api_usd else "leans closed"
    return Reason(VOLUME, f"{volume:.3g}", side, f"{numbers}: {gap:.0%} apart.")


def _recommend(reasons: tuple[Reason, ...], cost: CostAtScale | None) -> Recommendation:
    points = [r.points for r in reasons]
    find_out = tuple(r.question for r in reasons if r.points == "unknown")
    if "requires open" in points:
        choice = OPEN
    elif ("leans open" in points) == ("leans closed" in points):
        choice = EITHER
    else:
        choice = OPEN if "leans open" in points else CLOSED
    acceptable = (OPEN, CLOSED) if choice == EITHER else (choice,)
    return Recommendation(choice, acceptable, reasons, find_out, cost)
