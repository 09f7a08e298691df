"""The bundled dataset's deterministic checker: does a reply follow the house format,
and is it right?

ANSWER: <a few words>
TOPIC: <geography | arithmetic | language | grammar | colours | animals>
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TOPICS = ("geography", "arithmetic", "language", "grammar", "colours", "animals")
FORMAT = re.compile(r"^ANSWER: (?P<answer>[^\n]+)\nTOPIC: (?P<topic>[a-z]+)$")


def complies(reply: str) -> bool:
    """True when the whole reply (stripped) is exactly the two house-format lines
    with a known topic."""
    m = FORMAT.match(reply.strip())
    return bool(m) and m["topic"] in TOPICS


def answer_of(reply: str) -> str | None:
    m = FORMAT.match(reply.strip())
    return m["answer"].strip() if m else None


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
        raise ValueError(f"{len(replies)} replies for {len(expected)} expected answers")
    ok = [complies(r) for r in replies]
    exact = [
        a is not None and a.lower() == (answer_of(e) or "").lower()
        for a, e in zip(map(answer_of, replies), expected)
    ]
    return Score(100.0 * sum(ok) / len(ok), 100.0 * sum(exact) / len(exact), len(ok))


def evaluate(
    loaded, data="house-format-heldout", n: int | None = None, max_new_tokens: int = 24
) -> tuple[Score, list]:
    """Generate greedily for each held-out prompt (the conversation minus its last reply) and score
    it. A reply is cut as soon as it can no longer comply (the score is the same, the base model's
    rambling is not waited for). Returns the score and the rows (prompt, expected, reply)."""
    from .data import conversations

    convs = conversations(data)[:n]
    rows = []
    for msgs in convs:
        prompt, expected = msgs[:-1], msgs[-1]["content"]
        reply = _generate(loaded, prompt, max_new_tokens)
        rows.append({"prompt": prompt[-1]["content"], "expected": expected, "reply": reply})
    return score([r["reply"] for r in rows], [r["expected"] for r in rows]), rows


def could_comply(text: str) -> bool:
    """False once `text` (a reply's beginning) can no longer become a house-format reply."""
    t = text.lstrip()
    head = "ANSWER: "
    if not (t.startswith(head) or head.startswith(t)):
        return False
    return t.count("\n") <= 1 or not t.rstrip().count("\n") > 1


def _generate(loaded, prompt, max_new_tokens: int) -> str:
    import threading

    stop, seen = threading.Event(), []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if not could_comply("".join(seen)):
            stop.set()

    return loaded.generate(
        prompt, max_new_tokens=max_new_tokens, stop_event=stop, on_text=on_text
    ).text
