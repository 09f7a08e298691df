"""Notebook 03's own-format exercise: the learner's 20 training examples of a reply format of their
own, checked before anything trains (how many, their fields, no repeats, the held-out prompts kept
out, a pattern that describes every reply and not plain prose), then judged on the compliance they
bought: the share of held-out replies in the format, before → after a small LoRA run."""

from __future__ import annotations

import re
from collections.abc import Callable

from ..measure.scorers import normalize
from .exercise import NOT_ANSWERED, Checked, unanswered
from .workbook import Exercise

N_EXAMPLES = 20
MIN_HELDOUT = 4
MAX_REPLY_CHARS = 200  # the run trains on short sequences; a long reply would not fit them
FIELDS = ("prompt", "response")
OPTIONAL = ("system",)
PLAIN = (  # replies a model gives without your format: the pattern must reject them
    "The capital of France is Paris.",
    "Sure! The answer is 42.",
    "I think it is blue.",
)


def problems(examples, pattern, heldout) -> list[str]:
    """What stops the learner's data from training and measuring fairly, one line each (an empty
    list: ready). `examples`: the 20 dicts; `pattern`: a regular expression every reply in the
    format matches; `heldout`: the prompts to measure on, none of them trained on."""
    issues = _shape(examples)
    if issues:
        return issues
    issues += _repeats(examples)
    issues += _heldout(examples, heldout)
    issues += _pattern(examples, pattern)
    return issues


def _shape(examples) -> list[str]:
    if not isinstance(examples, (list, tuple)):
        return [f"my_examples is a {type(examples).__name__}: make it a list of dicts."]
    issues = []
    if len(examples) != N_EXAMPLES:
        issues.append(f"{len(examples)} examples: write exactly {N_EXAMPLES}.")
    for i, row in enumerate(examples):
        issues += _row(row, i)
    return issues


def _row(row, i: int) -> list[str]:
    if not isinstance(row, dict):
        return [
            f"example {i} is a {type(row).__name__}, not a dict {{'prompt': …, 'response': …}}."
        ]
    missing = [k for k in FIELDS if k not in row]
    extra = [k for k in row if k not in FIELDS + OPTIONAL]
    out = [f"example {i} has no {' and no '.join(map(repr, missing))}."] if missing else []
    if extra:
        out.append(f"example {i} has keys {extra}: use 'prompt' and 'response' (and 'system').")
    for k in FIELDS:
        if k in row and (not isinstance(row[k], str) or not row[k].strip()):
            out.append(f"example {i}'s {k} is empty or not text.")
    reply = row.get("response")
    if isinstance(reply, str) and len(reply) > MAX_REPLY_CHARS:
        out.append(
            f"example {i}'s response is {len(reply)} characters: keep replies under "
            f"{MAX_REPLY_CHARS} (the run trains on short sequences)."
        )
    return out


def _repeats(examples) -> list[str]:
    first: dict[str, int] = {}
    out = []
    for i, row in enumerate(examples):
        key = normalize(row["prompt"])
        if key in first:
            out.append(
                f"example {i} repeats example {first[key]}'s prompt: every prompt teaches once."
            )
        first.setdefault(key, i)
    return out


def _heldout(examples, heldout) -> list[str]:
    if not isinstance(heldout, (list, tuple)) or not all(isinstance(p, str) for p in heldout):
        return ["my_heldout is not a list of prompts (text)."]
    if len(heldout) < MIN_HELDOUT:
        return [f"{len(heldout)} held-out prompts: measure on at least {MIN_HELDOUT}."]
    trained = {normalize(row["prompt"]) for row in examples}
    return [
        f"held-out prompt {p!r} is also a training prompt: a model that memorised it would "
        "score without having learned the format. Use a new question."
        for p in heldout
        if normalize(p) in trained
    ]


def _pattern(examples, pattern) -> list[str]:
    if not isinstance(pattern, str) or not pattern:
        return ["my_pattern is not a regular expression (text, e.g. r'^MOOD: \\w+$')."]
    try:
        rx = re.compile(pattern)
    except re.error as e:
        return [f"my_pattern is not a regular expression: {e}."]
    out = [
        f"example {i}'s response {row['response'][:60]!r} does not match my_pattern: the pattern "
        "is how replies are scored, so every reply in your format must match it."
        for i, row in enumerate(examples)
        if not rx.search(row["response"])
    ]
    prose = [p for p in PLAIN if rx.search(p)]
    if prose:
        out.append(
            f"my_pattern also matches plain prose ({prose[0]!r}): it would count replies "
            "without your format. Anchor it (^ … $) and spell out the format's fixed parts."
        )
    return out


def own_format(solution: Callable, *, why: str) -> Exercise:
    """The exercise: `ex.check(n, my_examples, pattern=..., heldout=...)` checks the data before
    anything trains; with `before=` and `after=` (compliance, 0–1) it judges the run too: right
    when compliance rose (or was already 100 %)."""

    def judge(answer, reveal, *, pattern=None, heldout=None, before=None, after=None, **_):
        if unanswered(answer) or unanswered(pattern):
            return Checked(False, f"… {NOT_ANSWERED}", answered=False)
        issues = problems(answer, pattern, heldout)
        if issues:
            lines = "\n".join(f"- {x}" for x in issues)
            return Checked(False, f"✗ not ready to train:\n{lines}")
        ready = f"✓ {N_EXAMPLES} examples, {len(heldout)} held-out prompts, the pattern fits them"
        if before is None or after is None:
            return Checked(True, f"{ready}: ready to train.")
        rose = after > before or before == after == 1.0
        went = f"compliance {100 * before:.0f} % → {100 * after:.0f} %"
        if rose:
            return Checked(True, f"{ready}; {went}.\nWhy: {why}")
        return Checked(
            False,
            f"✗ {went}: the run did not teach your format.\nHint: read the replies above; a "
            "format the base model finds strange needs consistent examples (the same fixed "
            "parts in every reply), or a few more steps.",
        )

    return Exercise("change", judge, solution, reveals=False)
