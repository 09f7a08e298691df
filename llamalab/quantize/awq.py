"""AWQ through gptqmodel: find the input channels with large activations, scale their weights up
(and the activations down) before rounding so they lose less precision; then search a clipping range.

On CPU gptqmodel needs `backend=BACKEND.AWQ_TORCH` (its default packer needs CUDA). Its per-layer
clip search (`_compute_best_clip`, no switch in 7.6) is ~88 % of AWQ's time on CPU, and most of
that is page faults on its large temporary tensors; the kit runs AWQ in a subprocess with
torch's transparent-huge-page allocator (`THP_MEM_ALLOC_ENABLE=1`), which does not change the result.
"""
from __future__ import annotations

BITS = (4,)
DEFAULTS = {"samples": 32, "seq_len": 256, "batch_size": 4, "options": {}}
OPTIONS = ("sym", "true_sequential", "scale_search_chunked_activations")
OUT_MULTIPLE = 64     # the clip search processes output channels in batches of 64 (or 256)


def config(bits: int, group_size: int, options: dict):
    from gptqmodel import AWQConfig
    return AWQConfig(bits=bits, group_size=group_size, **options)


def quantize_kwargs(device: str) -> dict:
    """AWQ's default packer needs CUDA ("AWQ: CUDA is not available."); the torch one runs on CPU."""
    if device == "cpu":
        from gptqmodel import BACKEND
        return {"backend": BACKEND.AWQ_TORCH}
    return {}
