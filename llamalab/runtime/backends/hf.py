"""What every transformers backend shares: the CUDA check, the quantization_config reader, and the
loader (model + tokenizer → HFEngine) with transformers' per-load progress bars switched off."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from ...core.errors import InvalidSetting

TORCH = [("torch", "pip install torch"), ("transformers", "pip install transformers")]


def cuda_reason(device: str) -> str:
    """'' when `device` is the CPU or a CUDA device torch can see, else why not."""
    if not device.startswith("cuda"):
        return ""
    import torch

    return "" if torch.cuda.is_available() else "no CUDA device visible to torch"


def quantization_config(path: str) -> dict:
    """The checkpoint's `quantization_config` from config.json ({} when it is not quantized)."""
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        raise InvalidSetting(f"{path} has no config.json.", "Pass a folder holding a checkpoint.")
    return json.loads(cfg.read_text()).get("quantization_config") or {}


def load(
    path: str, device: str, dtype: str, trust_remote_code: bool = False, quantization_config=None
):
    """A transformers causal LM and its tokenizer as an HFEngine. `dtype` is a torch dtype name."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ...engines.transformers import HFEngine

    extra = {"quantization_config": quantization_config} if quantization_config is not None else {}
    with _no_progress_bars():
        model = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=getattr(torch, dtype),
            device_map=device,
            trust_remote_code=trust_remote_code,
            **extra,
        )
    if quantization_config is not None and not device.startswith("cuda"):
        release_checkpoint(model, path)
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    return HFEngine(model.eval(), tok)


def release_checkpoint(model, path: str) -> int:
    """After a quantize-on-load, copy the tensors that still point into the memory-mapped checkpoint
    (the unquantized embedding and norms) into the process's own memory, so the mapping closes: it
    held the whole bf16 file as file-backed RSS (2 GB for a 1B model) that no estimate counts. The
    pages no tensor uses are dropped first, so the copy does not raise the load's peak. Returns the
    bytes copied."""
    import torch

    from ...core import memory

    ranges = [r for f in sorted(Path(path).glob("*.safetensors")) for r in memory.mapped_ranges(f)]
    if not ranges:
        return 0
    inside = lambda t: any(a <= t.data_ptr() < b for a, b in ranges)
    mapped = [
        t
        for t in [*model.parameters(), *model.buffers()]
        if type(t.data) is torch.Tensor and inside(t.data)
    ]
    used = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()) for t in mapped)
    memory.drop_pages(_gaps(ranges, used))
    for t in mapped:
        t.data = t.data.clone()
    memory.release_freed_memory()  # the mapping closes once its last storage is collected
    return sum(t.numel() * t.element_size() for t in mapped)


def _gaps(ranges: list[tuple[int, int]], used: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of `ranges` that no (start, end) of `used` (sorted) covers."""
    out = []
    for start, end in ranges:
        at = start
        for a, b in used:
            if b <= at or a >= end:
                continue
            if a > at:
                out.append((at, a))
            at = max(at, b)
        if at < end:
            out.append((at, end))
    return out


@contextlib.contextmanager
def _no_progress_bars():
    """transformers draws a 'Loading weights' bar per load: one more in every notebook cell that
    loads. The kit's own figure is LoadedModel.load_s, so the bars stay off while it loads."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
