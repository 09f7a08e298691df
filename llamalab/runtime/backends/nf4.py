"""NF4 (bitsandbytes 4-bit NormalFloat with double quantization): the QLoRA base format.
Quantizes while loading; on CPU it runs where bitsandbytes lists 'cpu' among its supported devices."""
from __future__ import annotations

from ...catalog import Scheme
from . import installed, require

INSTALL = "pip install 'bitsandbytes>=0.48'"
REQUIRES = {"cpu": [("bitsandbytes", INSTALL)], "cuda": [("bitsandbytes", INSTALL)]}


def available(device: str) -> tuple[bool, str]:
    if not installed("bitsandbytes"):
        return False, f"bitsandbytes is not installed ({INSTALL})"
    if device.startswith("cuda"):
        import torch
        if not torch.cuda.is_available():
            return False, "no CUDA device visible to torch"
        return True, ""
    return _cpu_support()


def _cpu_support() -> tuple[bool, str]:
    try:
        import bitsandbytes as bnb
    except Exception as e:     # a broken native library raises at import
        return False, f"bitsandbytes failed to import: {e}"
    devices = getattr(bnb, "supported_torch_devices", ())
    if "cpu" not in devices:
        return False, f"this bitsandbytes {bnb.__version__} supports {sorted(devices)}, not 'cpu'"
    return True, ""


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from ..engine import HFEngine
    require("bitsandbytes", INSTALL, "NF4 is bitsandbytes' 4-bit format")
    compute = torch.bfloat16
    qcfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute)
    model = AutoModelForCausalLM.from_pretrained(path, quantization_config=qcfg, dtype=compute,
                                                 device_map=device, trust_remote_code=trust_remote_code)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    return HFEngine(model.eval(), tok)
