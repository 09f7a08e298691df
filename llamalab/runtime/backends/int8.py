"""INT8 weight-only: torchao `Int8WeightOnlyConfig` on CPU (fastest INT8 path measured here),
bitsandbytes LLM.int8 (`load_in_8bit`) on CUDA, the classic GPU path."""
from __future__ import annotations

from ...catalog import Scheme
from . import installed, require


def available(device: str) -> tuple[bool, str]:
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            return False, "no CUDA device visible to torch"
        if not installed("bitsandbytes"):
            return False, "bitsandbytes is not installed (pip install bitsandbytes)"
        return True, ""
    if not installed("torchao"):
        return False, "torchao is not installed (pip install torchao)"
    return True, ""


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ..engine import HFEngine
    if device.startswith("cuda"):
        require("bitsandbytes", "pip install bitsandbytes", "INT8 on CUDA uses LLM.int8")
        from transformers import BitsAndBytesConfig
        qcfg = BitsAndBytesConfig(load_in_8bit=True)
    else:
        require("torchao", "pip install torchao", "INT8 on CPU uses torchao weight-only quantization")
        from torchao.quantization import Int8WeightOnlyConfig
        from transformers import TorchAoConfig
        qcfg = TorchAoConfig(Int8WeightOnlyConfig())
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=qcfg, dtype=torch.bfloat16,
                                                 device_map=device, trust_remote_code=trust_remote_code)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    return HFEngine(model.eval(), tok)
