"""GPTQ through gptqmodel: round each weight column to the grid, then spread the rounding error over
the columns not yet rounded, using second-order (Hessian) statistics of the calibration activations.

Defaults measured on the embedded model, 2 cores (benchmarks/quantize.py): 32×256 tokens,
`true_sequential=False` and `batch_size=4` quantize in ~1 min at the same perplexity as gptqmodel's
defaults (~1.7 min): one calibration forward per layer instead of four.
"""

from __future__ import annotations

BITS = (4, 8)
DEFAULTS = {"samples": 32, "seq_len": 256, "batch_size": 4, "options": {"true_sequential": False}}
# The gptqmodel config fields a learner may set: QuantizeSettings fields marked with this method.


def config(bits: int, group_size: int, options: dict):
    """The gptqmodel quantization config (imported lazily: gptqmodel is heavy)."""
    from gptqmodel import GPTQConfig

    return GPTQConfig(bits=bits, group_size=group_size, **options)


def quantize_kwargs(device: str) -> dict:
    return {}
