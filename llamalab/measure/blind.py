"""A blind round for an arena vote: contenders' answers to the same prompts, shown in pairs as
"Answer 1" and "Answer 2" in an order a seeded coin picks per pair, which contender wrote which held
back until `reveal()`.

    table = llamalab.compare("default", ["f16", "q4_k_m"], prompts, reference="f16",
                             fixed_length=False, max_new_tokens=48)   # answers, KL and perplexity
    blind = llamalab.blind_round(table)        # or blind_round(blind_answers(models, prompts))
    record = blind.vote(blind.pairs[0].pair_id, "1", voter="ana")   # → a vote for ratings

A vote record names both contenders ({"pair_id", "a", "b", "winner", "voter"}: a wrote Answer 1, b
Answer 2), so `bradley_terry` rates them and position bias stays measurable.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..core import validate
from ..core.errors import InvalidSetting

CHOICES = {"1": "a", "2": "b", "tie": "tie"}  # what a voter presses → the record's winner
QUALITY = ("perplexity", "kl_vs_reference", "top1_vs_reference")  # compare()'s quality columns
MAX_NEW_TOKENS = 48


@dataclass(frozen=True)
class Answer:
    """One contender's answer to one prompt."""

    contender: str
    prompt: str
    text: str


@dataclass(frozen=True)
class BlindPair:
    """What a voter sees: a prompt and two anonymous answers (`identical` when they match)."""

    pair_id: str
    prompt: str
    answer_1: str
    answer_2: str

    @property
    def identical(self) -> bool:
        return self.answer_1.strip() == self.answer_2.strip()


@dataclass(frozen=True)
class Revealed:
    """Which contender wrote Answer 1 and Answer 2 of one pair."""

    pair_id: str
    prompt: str
    answer_1: str
    answer_2: str


@dataclass
class BlindRound:
    """Pairs of anonymous answers with the hidden mapping, and each contender's quality figures
    (compare()'s perplexity, KL and top-1 agreement vs the reference; empty when not measured)."""

    pairs: tuple[BlindPair, ...]
    contenders: tuple[str, ...]
    seed: int
    quality: dict[str, dict] = field(default_factory=dict)
    revealed: bool = False
    _authors: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    def pair(self, pair_id: str) -> BlindPair:
        for p in self.pairs:
            if p.pair_id == pair_id:
                return p
        raise InvalidSetting(f"No pair {pair_id!r} in this round.", "Use a pair_id from .pairs.")

    def vote(self, pair_id: str, choice: str, voter: str) -> dict:
        """The vote record for pressing `choice` ("1", "2" or "tie") on a pair, with both
        contenders resolved from the hidden mapping."""
        validate.choice("choice", choice, CHOICES)
        validate.text("voter", voter)
        self.pair(pair_id)
        a, b = self._authors[pair_id]
        return {"pair_id": pair_id, "a": a, "b": b, "winner": CHOICES[choice], "voter": voter}

    def reveal(self) -> tuple[Revealed, ...]:
        """Who wrote which answer, pair by pair; from now on the round counts as revealed."""
        self.revealed = True
        return tuple(Revealed(p.pair_id, p.prompt, *self._authors[p.pair_id]) for p in self.pairs)


def blind_round(answers, *, seed: int | None = None, quality: Mapping | None = None) -> BlindRound:
    """A BlindRound from `answers`: compare()'s DataFrame (the contender is "model/scheme", its
    quality columns come along; failed rows are left out) or Answers / {"contender", "prompt",
    "text"} records. Every two contenders that answered a prompt make a pair; the pairs' order and
    each pair's left/right come from `seed` (None: a fresh one, kept in `.seed`). `quality`:
    contender → {"perplexity": …, "kl_vs_reference": …} when the answers did not carry it."""
    seed = secrets.randbelow(2**31) if seed is None else validate.integer("seed", seed, lo=0)
    rows, measured = answer_rows(answers)
    by_prompt: dict[str, dict[str, str]] = {}
    for a in rows:
        by_prompt.setdefault(a.prompt, {})[a.contender] = a.text
    contenders = tuple(dict.fromkeys(a.contender for a in rows))
    if len(contenders) < 2:
        raise InvalidSetting(
            f"A blind round needs answers from two contenders or more; got {list(contenders)}.",
            "Generate answers with two models or schemes (compare() with two schemes).",
        )
    rng = random.Random(seed)
    pairs, authors = [], {}
    for prompt, texts in by_prompt.items():
        for x, y in itertools.combinations(sorted(texts), 2):
            left, right = (x, y) if rng.random() < 0.5 else (y, x)
            pid = _pair_id(prompt, x, y)
            pairs.append(BlindPair(pid, prompt, texts[left], texts[right]))
            authors[pid] = (left, right)
    rng.shuffle(pairs)
    scores = {**measured, **{k: dict(v) for k, v in (quality or {}).items()}}
    return BlindRound(tuple(pairs), contenders, seed, scores, _authors=authors)


def blind_answers(
    contenders: Mapping, prompts: Iterable[str], max_new_tokens: int = MAX_NEW_TOKENS
) -> list[Answer]:
    """Each contender's greedy answer to each prompt: `contenders` maps a name (e.g.
    "default/q4_k_m") to anything with `generate(prompt, max_new_tokens=, temperature=)` — a loaded
    model, a connected server, the room's model."""
    validate.integer("max_new_tokens", max_new_tokens, lo=1)
    prompts = [validate.text("prompt", p) for p in prompts]
    if not isinstance(contenders, Mapping) or len(contenders) < 2:
        raise InvalidSetting(
            "contenders must map two names or more to models.",
            'Pass e.g. {"default/f16": load("default", "f16"), "default/q4_k_m": …}.',
        )
    out = []
    for name, model in contenders.items():
        for p in prompts:
            g = model.generate(p, max_new_tokens=max_new_tokens, temperature=0.0)
            out.append(Answer(validate.text("contender", name), p, getattr(g, "text", g)))
    return out


def answer_rows(answers) -> tuple[list[Answer], dict[str, dict]]:
    """(answers, quality per contender) from a compare() DataFrame or records."""
    if hasattr(answers, "to_dict") and hasattr(answers, "columns"):  # a DataFrame
        return _from_table(answers)
    out = []
    for i, a in enumerate(answers):
        if isinstance(a, Mapping):
            a = Answer(a.get("contender"), a.get("prompt"), a.get("text"))  # type: ignore[arg-type]
        if not isinstance(a, Answer) or not all(
            isinstance(v, str) for v in (a.contender, a.prompt, a.text)
        ):
            raise InvalidSetting(
                f"Answer {i} is not an answer: {a!r:.120}.",
                'Pass Answers or records {"contender": …, "prompt": …, "text": …}.',
            )
        out.append(a)
    return out, {}


def _from_table(table) -> tuple[list[Answer], dict[str, dict]]:
    missing = {"model", "scheme", "prompt", "text"} - set(table.columns)
    if missing:
        raise InvalidSetting(
            f"The table has no {', '.join(sorted(missing))} column.",
            "Pass compare()'s DataFrame, or answer records.",
        )
    rows, quality = [], {}
    for r in table.to_dict("records"):
        if not isinstance(r.get("text"), str) or _present(r.get("error")):
            continue  # a scheme that failed: no answer to show
        name = f"{r['model']}/{r['scheme']}"
        rows.append(Answer(name, r["prompt"], r["text"]))
        got = {k: r[k] for k in QUALITY if _present(r.get(k))}
        if got:
            quality.setdefault(name, got)
    return rows, quality


def _present(v) -> bool:
    return v is not None and v == v and v != ""


def _pair_id(prompt: str, x: str, y: str) -> str:
    """The same for every voter of the room (the prompt and the two contenders, in any order),
    and tells nothing about either."""
    return hashlib.sha256("\0".join([prompt, *sorted((x, y))]).encode()).hexdigest()[:12]
