"""fp32 / bf16 / fp16 through transformers' `dtype=`: the unquantized baselines."""
from __future__ import annotations

from ...catalog import Scheme
from . import installed

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def available(device: str) -> tuple[bool, str]:
    if not installed("torch"):
        return False, "torch is not installed (pip install torch)"
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            return False, "no CUDA device visible to torch"
    return True, ""


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..engine import HFEngine
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, DTYPES[scheme.name]),
                                                 device_map=device, trust_remote_code=trust_remote_code)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    return HFEngine(model.eval(), tok)
