"""fp32 / bf16 / fp16 through transformers' `dtype=`: the unquantized baselines."""

from __future__ import annotations

from ...catalog import Scheme
from . import hf, missing

REQUIRES = {"cpu": hf.TORCH, "cuda": hf.TORCH}


def available(device: str) -> tuple[bool, str]:
    reason = missing(REQUIRES, device) or hf.cuda_reason(device)
    return not reason, reason


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    return hf.load(path, device, scheme.dtype, trust_remote_code)
