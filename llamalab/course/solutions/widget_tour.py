"""Notebook 05's exercises: what a weight scheme does to the KV cache (the calculator), a 4-bit
model's peak memory in a kernel that holds much more than weights (the arena), and a scheme chosen
from the arena's own measurements."""

from __future__ import annotations

from ...plan.estimator import estimate
from ..workbook import change, decide, predict

MAX_MEMORY_SHARE = 0.9  # of the reference scheme's measured peak memory
MIN_TOP1 = 0.9  # agreement with the reference scheme's top token on the held-out text


def _measured(summary):
    """The arena's rows that ran (a scheme that could not run here has an error instead)."""
    return summary[summary.error.isna()].set_index("scheme")


def laptop_scheme(choice, *, summary) -> tuple[bool, str]:
    """A scheme from the arena's table: peak memory ≤ 90 % of the reference's, top-1 ≥ 90 %."""
    rows = _measured(summary)
    if choice not in rows.index:
        return False, f"the arena measured {', '.join(rows.index)}; answer one of those names"
    row, ref = rows.loc[choice], rows.iloc[0]
    share = row.peak_memory_bytes / ref.peak_memory_bytes
    numbers = (
        f"peak {row.peak_memory_bytes / 1e6:.0f} MB = {share:.0%} of {rows.index[0]}'s, "
        f"top-1 agreement {row.top1_vs_reference:.1%}"
    )
    return share <= MAX_MEMORY_SHARE and row.top1_vs_reference >= MIN_TOP1, numbers


def _first_that_fits(*, summary) -> str:
    for scheme in _measured(summary).index:
        if laptop_scheme(scheme, summary=summary)[0]:
            return scheme
    return "none of the measured schemes"


def _beside(held: int, model: str, scheme: str, context: int) -> float:
    """A scheme's peak in a kernel that already holds `held` bytes: that plus the estimate less
    its runtime overhead (Python, torch and the tokenizer are in `held` already)."""
    e = estimate(model, scheme, context, device="cpu")
    return held + e.total_bytes - e.breakdown["overhead"]


EXERCISES = {
    1: change(
        lambda **_: "same",
        why="the KV cache holds keys and values computed at run time, in the runtime's own "
        "precision (16-bit by default in llama.cpp and vLLM); a weight scheme shrinks only the "
        "weights. To shrink the cache, quantize it separately (`kv_dtype=`) or use a model with "
        "fewer key/value heads (grouped-query attention).",
    ),
    2: predict(
        lambda *, held, model, context, **_: (
            _beside(held, model, "q4_k_m", context) / _beside(held, model, "fp32", context)
        ),
        within=1.5,
        why="4.5 bits ÷ 32 would say about 0.14, but a process holds much more than its weights: "
        "before the arena this kernel already held Python, torch and the widgets (the cell printed "
        "it), and each scheme adds its weights, its KV cache (16-bit in "
        "llama.cpp whatever the weights) and its activations on top. For a 135M model the kernel "
        "dwarfs the weights; for an 8B model the weights dominate and the ratio comes close to the "
        "bits. `llamalab.estimate('default', 'q4_k_m', 512, device='cpu')` shows what a scheme "
        "adds (its `overhead` term is the runtime the kernel already holds).",
    ),
    3: decide(
        laptop_scheme,
        _first_that_fits,
        need=f"at most {MAX_MEMORY_SHARE:.0%} of the reference scheme's peak memory and at least "
        f"{MIN_TOP1:.0%} top-1 agreement with it, from the arena's own table",
        hint="answer a scheme name; read `arena.summary[['scheme', 'peak_memory_bytes', "
        "'top1_vs_reference']]` — the smallest file is not always the one that keeps the answers.",
    ),
}
