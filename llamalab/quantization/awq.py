"""AWQ through gptqmodel: find the input channels with large activations, scale their weights up
(and the activations down) before rounding so they lose less precision;
then search a clipping range.

On CPU gptqmodel needs `backend=BACKEND.AWQ_TORCH` (its default packer needs CUDA). Its per-layer
clip search (`_compute_best_clip`, no switch in 7.6) was ~88 % of AWQ's time on CPU (697 s for
32×256 tokens on an idle 2-core machine, benchmarks/quantize.py), much of it page faults on
its large temporary tensors. Two supported changes bring the embedded model under 5 minutes:
  * the subprocess runs with torch's transparent-huge-page allocator (`THP_MEM_ALLOC_ENABLE=1`): the
    same arithmetic, byte-identical checkpoint (benchmarks/quantize.py checks the sha256);
  * 8 calibration rows × 256 tokens instead of 32: the clip search samples a fixed 512 tokens
    anyway, and perplexity / KL / top-1 did not change measurably
    (benchmarks/results/quantize*.json).
Pass samples=32 for the larger calibration set (about 1.5–2× longer).
"""

from __future__ import annotations

BITS = (4,)
DEFAULTS = {"samples": 8, "seq_len": 256, "batch_size": 4, "options": {}}
# The gptqmodel config fields a learner may set: QuantizeSettings fields marked with this method.
OUT_MULTIPLE = 64  # the clip search processes output channels in batches of 64 (or 256)


def config(bits: int, group_size: int, options: dict):
    from gptqmodel import AWQConfig

    return AWQConfig(bits=bits, group_size=group_size, **options)


def quantize_kwargs(device: str) -> dict:
    """AWQ's default packer needs CUDA ("AWQ: CUDA is not available.");
    the torch one runs on CPU."""
    if device == "cpu":
        from gptqmodel import BACKEND

        return {"backend": BACKEND.AWQ_TORCH}
    return {}
