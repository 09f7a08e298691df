"""AWQ 4-bit checkpoints: transformers 5 loads them only through gptqmodel (autoawq is deprecated
and unused); checkpoints made by autoawq (GEMM, zero_point) load the same way. On CPU:
TorchAtenAwqLinear."""

from __future__ import annotations

from ...catalog import Scheme
from . import gptq, hf, missing

REQUIRES = {
    dev: [*hf.TORCH, ("gptqmodel", gptq.INSTALL), ("accelerate", "pip install accelerate")]
    for dev in ("cpu", "cuda")
}


def available(device: str) -> tuple[bool, str]:
    reason = missing(REQUIRES, device) or hf.cuda_reason(device)
    return not reason, reason


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    gptq.check_checkpoint(path, scheme, "awq")
    return gptq.load_checkpoint(path, device, trust_remote_code)
