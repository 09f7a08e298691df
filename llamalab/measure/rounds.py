"""A blind round as one record the room's board keeps: every contender's greedy answer to each
prompt and their measured quality (perplexity, KL vs the reference), computed once by the educator.
Greedy answers are the same for every voter, so each learner's kernel makes its own BlindRound from
the record (its own left/right draw) and loads no model.

    record = round_record(table, name="4-bit vs 16-bit")    # compare()'s table or Answers
    blind = round_from_record(record)                       # a learner's round, fresh seed
"""

from __future__ import annotations

from collections.abc import Mapping

from ..core import validate
from ..core.errors import InvalidSetting
from .blind import QUALITY, Answer, BlindRound, answer_rows, blind_round

MAX_CONTENDERS = 8
MAX_PROMPTS = 20
MAX_PROMPT_CHARS = 2000
MAX_TEXT_CHARS = 4000
MAX_NAME_CHARS = 200  # a contender's name: "model/scheme" or a served model's id


def round_record(answers, *, name: str = "round", quality: Mapping | None = None) -> dict:
    """The record to publish for `answers` (compare()'s DataFrame, Answers or answer records; its
    quality columns come along, `quality` adds or overrides per contender). InvalidSetting when it
    is past the board's limits or has fewer than two contenders."""
    rows, measured = answer_rows(answers)
    scores = {**measured, **{k: dict(v) for k, v in (quality or {}).items()}}
    record = {
        "name": validate.text("name", name),
        "answers": [{"contender": a.contender, "prompt": a.prompt, "text": a.text} for a in rows],
        "quality": scores,
    }
    why = check_round(record)
    if why:
        raise InvalidSetting(
            f"This round cannot be published: {why}.",
            f"Keep it within {MAX_CONTENDERS} contenders, {MAX_PROMPTS} prompts, answers of "
            f"{MAX_TEXT_CHARS} characters (fewer max_new_tokens), quality keys {list(QUALITY)}.",
        )
    return record


def round_from_record(record: Mapping, seed: int | None = None) -> BlindRound:
    """A learner's BlindRound from a published record: the same pairs (and pair ids) as every other
    voter's, left and right drawn from `seed` (None: a fresh one), the published quality."""
    why = check_round(record)
    if why:
        raise InvalidSetting(f"Not a published round: {why}.", "Publish it with round_record().")
    answers = [Answer(a["contender"], a["prompt"], a["text"]) for a in record["answers"]]
    return blind_round(answers, seed=seed, quality=record.get("quality") or {})


def check_round(record) -> str | None:
    """Why `record` is not a round the board keeps (None when it is): its answers, contenders,
    prompts and quality figures, each within the limits above."""
    if not isinstance(record, Mapping):
        return "a round is a JSON object"
    answers = record.get("answers")
    if not isinstance(answers, list) or not answers:
        return "answers must be a non-empty list"
    for i, a in enumerate(answers):
        why = _answer_wrong(a)
        if why:
            return f"answers[{i}] {why}"
    contenders = {a["contender"] for a in answers}
    prompts = {a["prompt"] for a in answers}
    if not 2 <= len(contenders) <= MAX_CONTENDERS:
        return f"it has {len(contenders)} contenders; a round needs 2 to {MAX_CONTENDERS}"
    if len(prompts) > MAX_PROMPTS:
        return f"it has {len(prompts)} prompts; at most {MAX_PROMPTS}"
    if len({(a["contender"], a["prompt"]) for a in answers}) < len(answers):
        return "a contender answers one prompt twice"
    return _quality_wrong(record.get("quality"), contenders)


def _answer_wrong(a) -> str | None:
    if not isinstance(a, Mapping) or set(a) != {"contender", "prompt", "text"}:
        return 'must be {"contender", "prompt", "text"}'
    limits = {"contender": MAX_NAME_CHARS, "prompt": MAX_PROMPT_CHARS, "text": MAX_TEXT_CHARS}
    for key, most in limits.items():
        if not isinstance(a[key], str) or (key != "text" and not a[key].strip()):
            return f"{key} must be {'text' if key == 'text' else 'non-empty text'}"
        if len(a[key]) > most:
            return f"{key} is longer than {most} characters"
    return None


def _quality_wrong(quality, contenders: set) -> str | None:
    if quality is None:
        return None
    if not isinstance(quality, Mapping):
        return "quality must map contenders to their figures"
    for name, figures in quality.items():
        if name not in contenders:
            return f"quality names {name!r:.60}, which has no answers"
        if not isinstance(figures, Mapping) or set(figures) - set(QUALITY):
            return f"quality of {name!r:.60} may hold only {list(QUALITY)}"
        for key, v in figures.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < float("inf"):
                return f"quality {key} of {name!r:.60} must be a number ≥ 0"
    return None
