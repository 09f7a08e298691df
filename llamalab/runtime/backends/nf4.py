"""NF4 (bitsandbytes 4-bit NormalFloat with double quantization): the QLoRA base format.
Quantizes while loading; on CPU it runs where bitsandbytes lists 'cpu' among its supported
devices. It computes (and keeps embeddings and norms) in bf16, or in fp32 on a CPU without bf16
instructions (core.hardware.compute_dtype; the estimator counts the same)."""

from __future__ import annotations

from ...catalog import Scheme
from ...core.hardware import compute_dtype
from . import hf, missing

INSTALL = 'pip install "bitsandbytes>=0.48"'
REQUIRES = {dev: [*hf.TORCH, ("bitsandbytes", INSTALL)] for dev in ("cpu", "cuda")}


def available(device: str) -> tuple[bool, str]:
    reason = missing(REQUIRES, device) or hf.cuda_reason(device)
    if reason or device.startswith("cuda"):
        return not reason, reason
    return _cpu_support()


def _cpu_support() -> tuple[bool, str]:
    try:
        import bitsandbytes as bnb
    except Exception as e:  # a broken native library raises at import
        return False, f"bitsandbytes failed to import: {e}"
    devices = getattr(bnb, "supported_torch_devices", ())
    if "cpu" not in devices:
        return False, f"this bitsandbytes {bnb.__version__} supports {sorted(devices)}, not 'cpu'"
    return True, ""


def load(path: str, scheme: Scheme, device: str, trust_remote_code: bool = False, **_):
    import torch
    from transformers import BitsAndBytesConfig

    dtype = compute_dtype(device)
    qcfg = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, dtype),
    )
    return hf.load(path, device, dtype, trust_remote_code, quantization_config=qcfg)
