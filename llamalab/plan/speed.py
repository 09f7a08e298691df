"""The speed law: decoding reads every active weight once per token, plus each sequence's KV
cache, so tokens/s ≤ memory bandwidth ÷ bytes per token. Bandwidth is the catalog's for a GPU
and measured (`memory_bandwidth`) for this machine's CPU. Pure arithmetic but for that one reading.
"""

from __future__ import annotations

from .. import catalog as cat
from ..catalog import GPU, card
from ..core import validate
from ..core.errors import LlamalabError
from ..core.hardware import Hardware, hardware, memory_bandwidth
from .estimator import MAX_TOKENS, THIS, gpu_count, kv_cache_bytes, weight_bytes


def bandwidth(gpu) -> tuple[float, str] | None:
    """(bytes/s, where from) of `gpu`: a catalog GPU or GPU ('2x h100-80gb' reads twice as fast:
    tensor parallelism splits the bytes), this machine (its CPU, measured; a CUDA GPU, the catalog
    card of that name), or None where nothing says (a bare byte budget)."""
    if isinstance(gpu, GPU):
        return (gpu.bandwidth_bytes_s, f"{gpu.name} datasheet") if gpu.bandwidth_bytes_s else None
    if isinstance(gpu, str) and gpu.strip().lower() not in THIS:
        n, g = gpu_count(gpu)
        return n * g.bandwidth_bytes_s, f"{g.name} datasheet" + (f" × {n}" if n > 1 else "")
    if gpu in THIS or isinstance(gpu, Hardware):
        hw = gpu if isinstance(gpu, Hardware) else hardware()
        if hw.gpus:
            named = [
                cat.gpu(n) for n in cat.gpu_names() if cat.gpu(n).display == hw.gpus[0].display
            ]
            return (named[0].bandwidth_bytes_s, f"{named[0].name} datasheet") if named else None
        bw = memory_bandwidth()
        return bw.bytes_per_s, f"this machine, measured ({bw.threads} threads)"
    return None


def bytes_per_step(model="default", scheme="bf16", context: int = 4096, batch: int = 1) -> int:
    """Bytes one decode step reads: the active weights once, plus each sequence's KV cache of
    `context` tokens. The roofline's denominator: tokens/s per sequence ≤ bandwidth ÷ this."""
    c = card(model)
    s = cat.scheme(scheme, c)
    validate.integer("context", context, 1, MAX_TOKENS)
    validate.integer("batch", batch, 1, MAX_TOKENS)
    weights = sum(weight_bytes(c, s).values()) * (c.active_params / c.params if c.is_moe else 1)
    return int(weights + kv_cache_bytes(c, context, batch, s.kv_bytes))


def roofline(
    model="default", scheme="bf16", gpu="h100-80gb", context: int = 4096, batch: int = 1
) -> dict:
    """Upper bound on decode speed when memory bandwidth is the limit:
    every step reads the active weights once plus each sequence's KV cache."""
    c = card(model)
    s = cat.scheme(scheme, c)
    step_bytes = bytes_per_step(c, s.name, context, batch)
    bw = bandwidth(gpu)
    if not bw:
        raise LlamalabError(
            f"No memory bandwidth known for {gpu!r}.", "Pass a catalog GPU name or 'this'."
        )
    step_s = step_bytes / bw[0]
    return {
        "model": c.name,
        "scheme": s.name,
        "gpu": gpu.name if isinstance(gpu, GPU) else str(gpu),
        "bandwidth_source": bw[1],
        "bytes_per_step": step_bytes,
        "tokens_per_s_per_sequence": 1 / step_s,
        "tokens_per_s_total": batch / step_s,
    }
