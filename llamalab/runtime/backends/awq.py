"""AWQ 4-bit checkpoints: transformers 5 loads them only through gptqmodel (autoawq is deprecated and
unused); checkpoints made by autoawq (GEMM, zero_point) load the same way. On CPU: TorchAtenAwqLinear."""
from __future__ import annotations

from ...catalog import Scheme
from . import gptq

REQUIRES = {dev: [("gptqmodel", gptq.GPTQMODEL), ("accelerate", "pip install accelerate")] for dev in ("cpu", "cuda")}


def available(device: str) -> tuple[bool, str]:
    return gptq.available(device, packages=("gptqmodel", "accelerate"))


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    gptq.check_checkpoint(path, scheme, "awq")
    return gptq.load_hf(path, device, trust_remote_code)
