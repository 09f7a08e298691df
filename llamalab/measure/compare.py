"""Schemes × prompts → one tidy table of speed, memory, size and quality, all measured here.

A DataFrame over `sweep`: one row per (model, scheme, run, prompt) with the columns of the metrics
vocabulary, quality columns filled per scheme, and one row with `error` for a scheme that could not
be measured (so one missing backend never hides the others).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.settings import with_changes
from .sweep import COLUMNS, SweepSettings, collect, sweep

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_SCHEMES = ("fp32", "bf16", "fp16", "int8", "nf4", "gptq", "awq", "f16", "q8_0", "q4_1")
DEFAULT_PROMPTS = (
    "What is the capital of France?",
    "Explain what quantization does to a neural network in three sentences.",
)
COMPARE_DEFAULTS = SweepSettings(quality=True, reference="bf16")


def compare(
    model="default",
    schemes=DEFAULT_SCHEMES,
    prompts=DEFAULT_PROMPTS,
    settings: SweepSettings | None = None,
    *,
    on_event: Callable | None = None,
    load: Callable | None = None,
    evaluation=None,
    **overrides,
) -> pd.DataFrame:
    """A pandas DataFrame with one row per (model, scheme, run, prompt);
    `model` is a name or a list.

    `settings` (a SweepSettings; default: quality scored, KL against bf16) and/or its fields as
    keywords. Units are in the column names (_s seconds, _bytes bytes, tokens/s);
    `llamalab.metric(key)` gives the label and help of each. Perplexity is per token on `ppl_text`;
    KL in nats/token vs `reference`. `on_event` sees every sweep event as it happens
    (e.g. to print progress). `evaluation=(data, scorer)` (or an Evaluator) scores every scheme on
    the learner's own task too: the task_score columns, with a 95 % interval (llamalab.evaluate).
    """
    import pandas as pd

    events = sweep(
        model,
        schemes,
        prompts,
        with_changes(settings or COMPARE_DEFAULTS, **overrides),
        load=load,
        evaluation=evaluation,
    )
    if on_event is not None:
        events = _tap(events, on_event)
    return pd.DataFrame(collect(events), columns=list(COLUMNS))


def _tap(events, fn):
    for event in events:
        fn(event)
        yield event
