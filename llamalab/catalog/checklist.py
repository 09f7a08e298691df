"""The guide's open-vs-closed checklist as questions (checklist.toml): what each asks, why it
matters, the answers it takes and which way each answer points. `plan.open_or_closed` reads
the answers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from . import read

POINTS = ("requires open", "leans open", "leans closed", "neutral", "unknown", "no self-hosting")
VOLUME = "tokens_per_month"  # the one question answered with a number, judged by the cost model


@dataclass(frozen=True)
class Question:
    """One question of the checklist: `answers` maps each answer it takes to where it points
    (one of POINTS; the volume question's answer is a number, judged by the cost model)."""

    id: str
    asks: str
    why: str
    answers: dict[str, str]

    @property
    def numeric(self) -> bool:
        return self.id == VOLUME

    def to_dict(self) -> dict:
        takes = "a number" if self.numeric else " / ".join(self.answers)
        return {"id": self.id, "asks": self.asks, "answers": takes, "why it matters": self.why}


@cache
def checklist() -> tuple[Question, ...]:
    """The questions, in the order the checklist asks them."""
    out = tuple(Question(**q) for q in read("checklist.toml")["question"])
    for q in out:
        bad = [p for p in q.answers.values() if p not in POINTS and not q.numeric]
        if bad:  # a data edit that the recommendation would not understand
            raise ValueError(f"checklist.toml: {q.id} points to {bad}; known: {POINTS}")
    return out


def checklist_source() -> str:
    """Where the questions come from."""
    return read("checklist.toml")["source"]
