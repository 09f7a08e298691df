"""INT8 weight-only: torchao `Int8WeightOnlyConfig` on CPU (fastest INT8 path measured here),
bitsandbytes LLM.int8 (`load_in_8bit`) on CUDA, the classic GPU path."""

from __future__ import annotations

from ...catalog import Scheme
from . import hf, missing

REQUIRES = {
    "cpu": [*hf.TORCH, ("torchao", "pip install torchao")],
    "cuda": [*hf.TORCH, ("bitsandbytes", "pip install bitsandbytes")],
}


def available(device: str) -> tuple[bool, str]:
    reason = hf.cuda_reason(device) or missing(REQUIRES, device)
    return not reason, reason


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    if device.startswith("cuda"):
        from transformers import BitsAndBytesConfig

        qcfg = BitsAndBytesConfig(load_in_8bit=True)
    else:
        from torchao.quantization import Int8WeightOnlyConfig
        from transformers import TorchAoConfig

        qcfg = TorchAoConfig(Int8WeightOnlyConfig())
    return hf.load(path, device, "bfloat16", trust_remote_code, quantization_config=qcfg)
