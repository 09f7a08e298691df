"""Notebook 00's exercises: the KV cache by hand, the memory of a chat predicted, a scheme for 70B
on one H100, and what serving with vLLM changes."""

from __future__ import annotations

from ...catalog import gpu, scheme
from ...plan.estimator import estimate
from ...plan.speed import roofline
from ..workbook import change, compute, decide, predict

GB = 1e9
H100 = "h100-80gb"
GPU_SCHEMES = ("bf16", "fp16", "fp8", "int8", "gptq-8bit", "gptq-4bit", "awq-4bit", "nf4")


def kv_32k(**_) -> float:
    return estimate("llama-3.1-8b", "bf16", context=32768).breakdown["kv_cache"] / GB


def fits_70b(name: str) -> bool:
    return estimate("llama-3.1-70b", name, context=8192, device="cuda").fits(H100)


def scheme_for_70b(choice: str) -> tuple[bool, str]:
    """Fits one H100 at 8K context, with the most bits among the schemes that fit."""
    e = estimate("llama-3.1-70b", choice, context=8192, device="cuda")
    most = max(scheme(s).bits for s in GPU_SCHEMES if fits_70b(s))
    bits = scheme(choice).bits
    speed = roofline("llama-3.1-70b", choice, H100, context=8192)["tokens_per_s_per_sequence"]
    numbers = (
        f"needs {e.total_bytes / GB:.1f} GB, one H100 holds {gpu(H100).memory_bytes / GB:.1f} GB; "
        f"{bits}-bit weights; roofline {speed:.0f} tokens/s"
    )
    if not e.fits(H100):
        return False, numbers
    if bits < most:
        return False, numbers + f"; a scheme with more bits ({most}) fits too and loses less"
    return True, numbers


EXERCISES = {
    1: predict(
        lambda **_: estimate("default", "bf16", context=100, device="cpu").total_bytes / GB,
        within=1.5,
        unit=" GB",
        why="the estimate at the context used adds to the weights (0.27 GB in bf16) a KV cache and "
        "activations for ~80 tokens (a few MB) and the Python process with torch imported (about "
        "0.4 GB, `llamalab/catalog/assumptions.toml`): on a CPU the process itself is most of a "
        "small model's footprint.",
    ),
    2: compute(
        kv_32k,
        lambda **_: 2 * 32 * 8 * 128 * 2 * 32768 / GB,
        rel=0.01,
        why="the KV cache is linear in context: a quarter of the 128K figure (4.29 GB = 4 GiB)",
        hint="2 (a key and a value) · layers · KV heads · head dim · context · bytes per value; "
        "or scale the 128K figure above.",
    ),
    3: decide(
        scheme_for_70b,
        lambda **_: "fp8",
        need="Llama 3.1 70B on one H100 80GB at 8K context, losing as little quality as possible",
        hint="try each scheme with `llamalab.estimate('llama-3.1-70b', s, context=8192, "
        "device='cuda').fits('h100-80gb')`; fewer bits per weight lose more quality.",
    ),
    4: change(
        lambda **_: "same",
        why="the KV cache holds every token of the context whatever the engine: 17.2 GB at 128K. "
        "What vLLM changes is the prefill: in chunks of 8192 tokens its activations are ~1 GB, "
        "not 15.6.",
    ),
}
