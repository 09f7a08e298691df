"""GPTQ checkpoints (4- or 8-bit) through transformers + optimum + gptqmodel; checkpoints written by
auto-gptq load too (same format). On CPU gptqmodel picks its torch kernels (TorchAtenLinear)."""

from __future__ import annotations

import os

from ...catalog import Scheme
from ...core.errors import InvalidSetting
from . import hf, missing

# gptqmodel 7.6 crashes on ≤2-core machines unless this is set before it is imported.
CPU_WORKERS = {"GPTQMODEL_CPU_WORKERS": os.environ.get("GPTQMODEL_CPU_WORKERS", "2")}
INSTALL = 'pip install "llamalab[quant]"   # gptqmodel 7.6 + optimum (7.7+ needs torch>=2.14.1)'
REQUIRES = {
    dev: [*hf.TORCH, ("gptqmodel", INSTALL), ("optimum", INSTALL)] for dev in ("cpu", "cuda")
}


def available(device: str) -> tuple[bool, str]:
    reason = missing(REQUIRES, device) or hf.cuda_reason(device)
    return not reason, reason


def check_checkpoint(path: str, scheme: Scheme, method: str) -> dict:
    """The checkpoint must be `method` with the scheme's bits; say what it is otherwise."""
    q = hf.quantization_config(path)
    got = q.get("quant_method")
    if got != method:
        what = f"a {got} checkpoint" if got else "not quantized"
        raise InvalidSetting(
            f"{path} is {what}, not {method.upper()}.",
            f"Make one with llamalab.quantize({str(path)!r}, {method!r})"
            if not got
            else f"Load it with its own scheme ({got}).",
        )
    if int(q.get("bits", scheme.bits)) != int(scheme.bits):
        raise InvalidSetting(
            f"{path} is {q.get('bits')}-bit {method.upper()}, not {int(scheme.bits)}-bit.",
            f"Load it with scheme='{method}-{q.get('bits')}bit'."
            if method == "gptq"
            else "Use a 4-bit checkpoint.",
        )
    return q


def load_checkpoint(path: str, device: str, trust_remote_code: bool):
    """transformers loads GPTQ and AWQ checkpoints alike (the quantizer comes from config.json)."""
    for key, value in CPU_WORKERS.items():
        os.environ.setdefault(key, value)
    return hf.load(
        path, device, "float16" if device.startswith("cuda") else "bfloat16", trust_remote_code
    )


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    check_checkpoint(path, scheme, "gptq")
    return load_checkpoint(path, device, trust_remote_code)
