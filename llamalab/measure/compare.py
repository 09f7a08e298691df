"""Schemes × prompts → one tidy table of speed, memory, size and quality, all measured here.

A DataFrame over `llamalab.measure.sweep`: one row per (model, scheme, run, prompt) with the columns
of `llamalab.metrics`, quality columns filled per scheme, and one row with `error` for a scheme that
could not be measured (so one missing backend never hides the others).
"""
from __future__ import annotations

from typing import Callable

from .sweep import COLUMNS, collect, disk_bytes, summary, sweep

__all__ = ["COLUMNS", "DEFAULT_PROMPTS", "DEFAULT_SCHEMES", "compare", "disk_bytes", "summary"]

DEFAULT_SCHEMES = ("fp32", "bf16", "fp16", "int8", "nf4", "gptq", "awq", "f16", "q8_0", "q4_1")
DEFAULT_PROMPTS = ("What is the capital of France?",
                   "Explain what quantization does to a neural network in three sentences.")


def compare(model="default", schemes=DEFAULT_SCHEMES, prompts=DEFAULT_PROMPTS, *, max_new_tokens: int = 64,
            fixed_length: bool = True, repeats: int = 1, warmup: int = 4, reference: str | None = "bf16",
            quality: bool = True, tokens: int = 1024, context: int = 512, device: str = "cpu",
            quantize_missing: bool = True, on_event: Callable | None = None, load: Callable | None = None):
    """A pandas DataFrame with one row per (model, scheme, run, prompt); `model` is a name or a list.

    Units are in the column names (_s seconds, _bytes bytes, tokens/s); labels and help for each are in
    `llamalab.metrics`. Perplexity is per token on `ppl_text`; KL in nats/token vs `reference`.
    fixed_length forces max_new_tokens new tokens (comparable speed). `on_event` sees every sweep event
    as it happens (e.g. to print progress).
    """
    import pandas as pd
    events = sweep(model, schemes, prompts, max_new_tokens=max_new_tokens,
                   fixed_length=fixed_length, repeats=repeats, warmup=warmup, quality=quality,
                   reference=reference, tokens=tokens, context=context, device=device,
                   quantize_missing=quantize_missing, load=load)
    if on_event is not None:
        events = _tap(events, on_event)
    return pd.DataFrame(collect(events), columns=list(COLUMNS))


def _tap(events, fn):
    for event in events:
        fn(event)
        yield event
