"""GPTQ checkpoints (4- or 8-bit) through transformers + optimum + gptqmodel; checkpoints written by
auto-gptq load too (same format). On CPU gptqmodel picks its torch kernels (TorchAtenLinear)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from ...catalog import Scheme
from ...errors import InvalidSetting
from . import installed

GPTQMODEL = ('pip install "gptqmodel==7.6.0" "optimum>=2.3,<3"   '
             '# 7.7+ needs torch>=2.14.1 and would pull a CUDA torch')
REQUIRES = {dev: [("gptqmodel", GPTQMODEL), ("optimum", GPTQMODEL)] for dev in ("cpu", "cuda")}


def prepare() -> None:
    """gptqmodel 7.6 crashes quantizing on ≤2-core machines unless this is set before its import."""
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")


def available(device: str, packages=("gptqmodel", "optimum")) -> tuple[bool, str]:
    missing = [p for p in packages if not installed(p)]
    if missing:
        return False, f"{' and '.join(missing)} not installed ({GPTQMODEL})"
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            return False, "no CUDA device visible to torch"
    return True, ""


def quantization_config(path: str) -> dict:
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        raise InvalidSetting(f"{path} has no config.json.", "Pass a folder holding a quantized checkpoint.")
    return json.loads(cfg.read_text()).get("quantization_config") or {}


def check_checkpoint(path: str, scheme: Scheme, method: str) -> dict:
    """The checkpoint must be `method` with the scheme's bits; say what it is otherwise."""
    q = quantization_config(path)
    got = q.get("quant_method")
    if got != method:
        what = f"a {got} checkpoint" if got else "not quantized"
        raise InvalidSetting(f"{path} is {what}, not {method.upper()}.",
                             f"Make one with llamalab.quantize({str(path)!r}, {method!r})" if not got
                             else f"Load it with its own scheme ({got}).")
    if int(q.get("bits", scheme.bits)) != int(scheme.bits):
        raise InvalidSetting(f"{path} is {q.get('bits')}-bit {method.upper()}, not {int(scheme.bits)}-bit.",
                             f"Load it with scheme='{method}-{q.get('bits')}bit'." if method == "gptq"
                             else "Use a 4-bit checkpoint.")
    return q


def load_hf(path: str, device: str, trust_remote_code: bool):
    """transformers loads GPTQ and AWQ checkpoints alike (the quantizer comes from config.json)."""
    prepare()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..engine import HFEngine
    dtype = torch.float16 if device.startswith("cuda") else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map=device,
                                                 trust_remote_code=trust_remote_code)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    return HFEngine(model.eval(), tok)


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    check_checkpoint(path, scheme, "gptq")
    return load_hf(path, device, trust_remote_code)
