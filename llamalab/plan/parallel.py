"""How many GPUs one replica needs: the one answer the estimate, the calculator, `deployment_plan`,
`cost_at_scale` and the CLI all give. Pure arithmetic, no torch.

The count is the smallest that the parallelism rules allow and the memory needs. Tensor parallelism
(TP) splits every layer across the GPUs of one node, and vLLM needs the attention heads divisible by
it (1, 2, 4 or 8); when one node is not enough, pipeline parallelism (PP) puts groups of layers on
further nodes. A serving engine keeps part of each GPU for itself: vLLM uses at most
`--gpu-memory-utilization` of it (0.90 by default; 0.95 when that is what it takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..catalog import ModelCard
from ..core.errors import LlamalabError

TP_SIZES = (1, 2, 4, 8)
ENGINES = ("transformers", "vllm", "llama.cpp")
UTILIZATION = {"vllm": (0.90, 0.95), "transformers": (1.0,), "llama.cpp": (1.0,)}


class PlanDoesNotFit(LlamalabError):
    """No GPU count up to `max_nodes` nodes holds this model under this scheme."""


def capacity(engine: str) -> float:
    """The largest share of a GPU's memory `engine` may use."""
    return max(UTILIZATION[engine])


def valid_tp(c: ModelCard, n: int) -> bool:
    """vLLM shards attention heads: heads divisible by TP; KV heads divisible by it,
    or replicated evenly."""
    return c.heads % n == 0 and (c.kv_heads % n == 0 or n % c.kv_heads == 0)


@dataclass(frozen=True)
class Split:
    """GPUs per replica as TP × PP, the memory share each uses, and why."""

    tensor_parallel: int
    pipeline_parallel: int
    utilization: float  # share of each GPU's memory the engine may use
    per_gpu_bytes: int  # the estimate's peak on each GPU (its sharded part ÷ GPUs + the overhead)
    reasons: tuple[str, ...]

    @property
    def gpus(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel


def split(
    c: ModelCard,
    peak_bytes: int,
    overhead_bytes: int,
    gpu_bytes: int,
    gpu_name: str = "GPU",
    engine: str = "vllm",
    gpus_per_node: int = 8,
    max_nodes: int | None = None,
) -> Split:
    """The smallest valid TP on one node whose share fits, else PP stages of the largest valid TP.
    Weights, KV cache and activations are sharded; the runtime `overhead_bytes` is per GPU."""
    sharded = peak_bytes - overhead_bytes
    per_gpu = lambda n: math.ceil(sharded / n) + overhead_bytes
    sizes = [n for n in TP_SIZES if n <= gpus_per_node and valid_tp(c, n)]
    for n in sizes:
        for util in UTILIZATION[engine]:
            if per_gpu(n) <= gpu_bytes * util:
                return Split(n, 1, util, per_gpu(n), _tp_reasons(c, n, util, per_gpu(n), engine))
    tp, util = max(sizes), UTILIZATION[engine][0]
    room = gpu_bytes * util - overhead_bytes
    pp = math.ceil(sharded / room / tp) if room > 0 else c.layers + 1
    if pp > min(max_nodes or c.layers, c.layers):
        raise PlanDoesNotFit(
            f"{c.name} needs {peak_bytes / 1e9:.0f} GB: more than "
            f"{max_nodes or c.layers} nodes of {tp} × {gpu_name}.",
            "Use a bigger GPU type, a lower-bit scheme or a lower context.",
        )
    why = (
        f"One node of {tp} × {gpu_name} holds {tp * gpu_bytes * util / 1e9:.0f} GB at "
        f"utilization {util:.2f}, less than needed: PP={pp} pipeline stages, one node each, "
        f"TP={tp} within each ({per_gpu(tp * pp) / 1e9:.1f} GB per GPU)."
    )
    return Split(tp, pp, util, per_gpu(tp * pp), (why,))


def _tp_reasons(c: ModelCard, n: int, util: float, per_gpu: int, engine: str) -> tuple[str, ...]:
    skipped = [m for m in TP_SIZES if m < n and not valid_tp(c, m)]
    why = (
        f"TP={n}: the smallest GPU count whose memory holds it at {engine}'s share {util:.2f} "
        f"({per_gpu / 1e9:.1f} GB per GPU)"
        + (
            f"; TP={skipped} skipped: {c.heads} attention heads are not divisible by it"
            if skipped
            else ""
        )
        + "."
    )
    if util <= UTILIZATION[engine][0]:
        return (why,)
    return (
        why,
        f"At vLLM's default 0.90 it does not fit: raised to {util:.2f} (little room left for the "
        "KV cache: few concurrent sequences).",
    )
