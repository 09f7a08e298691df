"""The bundled dataset's two numbers, in %: format compliance and exact answers.

ANSWER: <a few words>
TOPIC: <geography | arithmetic | language | grammar | colours | animals>

The checks themselves are scorers (llamalab.measure.scorers: `house_format`, `house_answer`), so
`llamalab.evaluate(model, "house-format-heldout", "house_format")` scores a model on this task.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import InvalidSetting
from ..measure.scorers import TOPICS, answer_of, complies, could_comply

__all__ = ["TOPICS", "Score", "answer_of", "complies", "could_comply", "house_score", "score"]


@dataclass(frozen=True)
class Score:
    """Share of replies in the house format (`compliance`) and with the expected answer
    (`exact`), in %."""

    compliance: float
    exact: float
    n: int

    def to_dict(self) -> dict:
        return {"compliance_pct": self.compliance, "exact_pct": self.exact, "n": self.n}


def score(replies: list[str], expected: list[str]) -> Score:
    """Compliance and exact match of `replies` against the expected assistant texts
    of the same rows."""
    if len(replies) != len(expected) or not replies:
        raise InvalidSetting(
            f"{len(replies)} replies for {len(expected)} expected answers.",
            "Pass one expected reply per reply (at least one).",
        )
    ok = [complies(r) for r in replies]
    exact = [
        a is not None and a.lower() == (answer_of(e) or "").lower()
        for a, e in zip(map(answer_of, replies), expected)
    ]
    return Score(100.0 * sum(ok) / len(ok), 100.0 * sum(exact) / len(exact), len(ok))


def house_score(evaluation) -> Score:
    """The Score of an evaluation on house-format data (its generated replies; nothing is
    generated again)."""
    rows = evaluation.rows[evaluation.rows["error"] == ""]
    return score(list(rows["reply"]), list(rows["expected"]))
