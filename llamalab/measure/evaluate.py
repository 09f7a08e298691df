"""Score a model on the learner's own task: generate a reply per example, score it, and summarize
with a 95 % confidence interval.

    result = llamalab.evaluate(model, [{"prompt": "Capital of France?", "expected": "Paris"}, ...],
                               scorer="contains")
    print(result)        # the mean score, its interval, n, scorer, model and scheme
    result.rows          # one row per example: prompt, expected, reply, score, speeds

The model is anything `load()` or `connect()` gave (in-process, a quantized scheme, an adapter
attached, a served endpoint) or a `Server` (its `connect()` is used). Replies are greedy.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError
from .confidence import interval
from .examples import Example, Examples, examples
from .scorers import Scorer, as_score
from .scorers import scorer as resolve

if TYPE_CHECKING:
    import pandas as pd

ROW_COLUMNS = (
    "prompt",
    "expected",
    "reply",
    "score",
    "new_tokens",
    "ttft_s",
    "decode_tokens_per_s",
    "finish_reason",
    "error",
)
INTERVALS = {
    "wilson": "Wilson 95 % interval (right/wrong scores)",
    "bootstrap": "bootstrap 95 % interval (fractional scores, 2000 resamples)",
}


@dataclass(frozen=True)
class Evaluation:
    """One model scored on one task: the mean score (0–1) with its 95 % interval [low, high]
    (`interval`: wilson or bootstrap), `n` examples scored, `failed` that could not be generated,
    and `rows`, one per example."""

    score: float
    low: float
    high: float
    interval: str
    n: int
    failed: int
    scorer: str
    data: str
    model: str
    scheme: str
    rows: pd.DataFrame = field(repr=False)
    scorer_used: Scorer = field(repr=False, compare=False)

    @property
    def summary(self) -> pd.DataFrame:
        """One row: the numbers of `str(self)` as a table."""
        import pandas as pd

        return pd.DataFrame([self.to_dict()])

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "scheme": self.scheme,
            "task": self.task,
            "task_score": self.score,
            "task_score_low": self.low,
            "task_score_high": self.high,
            "task_n": self.n,
            "task_interval": self.interval,
            "task_failed": self.failed,
        }

    @property
    def task(self) -> str:
        """What was scored, in words: the scorer's name on the data's source."""
        return f"{self.scorer} on {self.data}"

    def rescore(self, how) -> Evaluation:
        """The same replies scored another way (a scorer name, Scorer or function). Nothing is
        generated again: a reply the first scorer cut early stays cut."""
        s = resolve(how)
        rows = self.rows.copy()
        ok = rows["error"] == ""
        for i, expected in rows.loc[ok, "expected"].items():
            _check(s, expected, int(i))  # type: ignore[arg-type]
        rows.loc[ok, "score"] = [_score(s, r.reply, r.expected, i) for i, r in rows[ok].iterrows()]
        return _evaluation(rows, s, self.data, self.model, self.scheme)

    def __str__(self) -> str:
        lines = [
            f"{self.model} ({self.scheme}), {self.task}:",
            f"  score {100 * self.score:.1f} % of {self.n} examples, 95 % interval "
            f"{100 * self.low:.1f}–{100 * self.high:.1f} % ({INTERVALS[self.interval]})",
        ]
        if self.failed:
            lines.append(f"  {self.failed} examples failed to generate: see .rows.error")
        return "\n".join(lines)


def evaluate(
    model,
    data,
    scorer: str | Scorer | Callable = "exact",
    *,
    n: int | None = None,
    max_new_tokens: int = 64,
    system: str | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> Evaluation:
    """Generate a greedy reply to each example of `data` (the first `n`) and score it with `scorer`
    (a name: exact, contains, regex, valid_json, number, house_format, house_answer; a Scorer; or
    a function (reply, expected) -> bool | float in [0, 1]). A reply ends at max_new_tokens, or as
    soon as the scorer says it can no longer score. `on_row` sees each row as it is scored. The data
    and scorer are checked before anything is generated."""
    return Evaluator(data, scorer, n=n, max_new_tokens=max_new_tokens, system=system)(model, on_row)


@dataclass(frozen=True, init=False)
class Evaluator:
    """A task, checked once, to score model after model: `compare(..., evaluation=...)` and
    `finetune_compare` hold one. Built from the same arguments as `evaluate()`."""

    examples: Examples
    scorer: Scorer
    max_new_tokens: int
    system: str | None

    def __init__(self, data, scorer="exact", *, n=None, max_new_tokens=64, system=None):
        s = resolve(scorer)
        ex = examples(data, needs_expected=s.needs_expected)
        if n is not None:
            validate.integer("n", n, lo=1)
            ex = Examples(ex.rows[:n], ex.source)
        for i, e in enumerate(ex.rows):
            _check(s, e.expected, i)
        validate.integer("max_new_tokens", max_new_tokens, lo=1)
        object.__setattr__(self, "examples", ex)
        object.__setattr__(self, "scorer", s)
        object.__setattr__(self, "max_new_tokens", max_new_tokens)
        object.__setattr__(self, "system", system)

    @classmethod
    def of(cls, spec) -> Evaluator:
        """An Evaluator from `evaluation=`: an Evaluator, or (data, scorer)."""
        if isinstance(spec, Evaluator):
            return spec
        if isinstance(spec, tuple) and len(spec) == 2:
            return cls(*spec)
        raise InvalidSetting(
            f"evaluation={str(spec)[:80]} is not a task.",
            'Pass evaluation=(data, scorer), e.g. ([{"prompt": ..., "expected": ...}], '
            '"contains"), or llamalab.Evaluator(data, scorer, max_new_tokens=...).',
        )

    def __call__(self, model, on_row=None, stop_event=None) -> Evaluation:
        """Score `model` on every example; `stop_event` (set from any thread) ends it after the
        current example, with the rows done so far."""
        import pandas as pd

        m = _model(model)
        rows = []
        for i, e in enumerate(self.examples.rows):
            if stop_event is not None and stop_event.is_set():
                break
            rows.append(self._row(m, e, i))
            if on_row is not None:
                on_row(rows[-1])

        frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
        name = f"{m.name} + adapter {Path(m.adapter).name}" if m.adapter else m.name
        return _evaluation(frame, self.scorer, self.examples.source, name, m.scheme_name)

    def _row(self, m, e: Example, i: int) -> dict:
        row = {"prompt": e.prompt, "expected": e.expected, "error": ""}
        try:
            g = _generate(m, e.prompt, self.scorer, self.max_new_tokens, self.system)
        except LlamalabError as err:  # this example, not the whole task: its row says why
            return {**row, "reply": "", "score": math.nan, "error": err.message}
        score = _score(self.scorer, g.text, e.expected, i)
        return {
            **row,
            "reply": g.text,
            "score": score,
            "new_tokens": g.new_tokens,
            "ttft_s": g.ttft_s,
            "decode_tokens_per_s": g.decode_tokens_per_s,
            "finish_reason": g.finish_reason,
        }


def _check(s: Scorer, expected, i: int) -> None:
    """Refuse, naming the row, an expected value the scorer cannot use (before anything runs)."""
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        if s.needs_expected:
            raise InvalidSetting(
                f"Row {i} has no expected value for {s.name!r}.",
                "Add what the reply should be, or pick a scorer that needs none "
                "(valid_json, house_format).",
            )
        return
    for value in _alternatives(expected):
        try:
            s.check(value)
        except ValueError as err:
            raise InvalidSetting(
                f"Row {i} cannot be scored by {s.name!r}: {err}.",
                "Fix the row's expected value, or pick another scorer.",
            ) from None


def _alternatives(expected) -> list:
    """A list of expected values means: any of these is right (the best score counts)."""
    return list(expected) if isinstance(expected, (list, tuple)) else [expected]


def _score(s: Scorer, reply: str, expected, i: int) -> float:
    return max(as_score(s(reply, x), i, s.name) for x in _alternatives(expected))


def _evaluation(rows, s: Scorer, source: str, model: str, scheme: str) -> Evaluation:
    ok = rows["error"] == ""
    scores = [float(x) for x in rows.loc[ok, "score"]]
    if not scores:
        why = rows["error"].iloc[0] if len(rows) else "stopped before the first one."
        raise LlamalabError(
            f"No example of {source} could be generated: {why}",
            "Check the model (generate one prompt by hand), then evaluate again.",
        )
    ci = interval(scores)
    return Evaluation(
        ci.mean,
        ci.low,
        ci.high,
        ci.method,
        len(scores),
        int((~ok).sum()),
        s.name,
        source,
        model,
        scheme,
        rows,
        s,
    )


def _model(model):
    """The LoadedModel to generate with: a Server's connection (the server keeps it open)."""
    from ..runtime.loaded import LoadedModel

    if isinstance(model, LoadedModel):
        return model
    connect = getattr(model, "connect", None)
    if callable(connect):
        return connect()
    raise InvalidSetting(
        f"{str(model)[:60]} is not a model to evaluate.",
        "Pass what llamalab.load() or llamalab.connect() returned, or a running llamalab.serve() "
        "server.",
    )


def _generate(m, prompt, s: Scorer, max_new_tokens: int, system: str | None):
    """A greedy reply, cut as soon as the scorer gives up on it."""
    stop, seen = threading.Event(), []

    def on_text(piece: str) -> None:
        seen.append(piece)
        if s.gives_up("".join(seen)):
            stop.set()

    return m.generate(
        prompt,
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        system=system,
        stop_event=stop,
        on_text=on_text,
    )
