"""The quantizing subprocess, started as a process Task (llamalab/core/tasks.py):
`quantize_checkpoint(**kwargs)`.

Run apart from the notebook kernel so gptqmodel's imports, its ~1 GB peak and allocator settings
(set in the environment before torch starts) stay out of the learner's process. Progress goes to
stdout as the task's JSON lines (one per decoder layer); gptqmodel's own log to the task's log.
"""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path

from ..core import memory, tasks
from ..core.errors import InvalidSetting
from ..runtime.loader import resolve_device


def decoder_layers(model):
    """The ModuleList of decoder layers (the longest ModuleList of the model)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    return max(lists, key=len)


def track_progress(model) -> None:
    """Report the first forward of each decoder layer: gptqmodel quantizes layer by layer."""
    layers = decoder_layers(model)
    seen: set[int] = set()

    def hook(i):
        def pre(_module, _args):
            if i not in seen:
                seen.add(i)
                tasks.progress(i + 1, len(layers), f"layer {i + 1}/{len(layers)}")

        return pre

    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(hook(i))


def calibration_rows(tok, text: str, samples: int, seq_len: int) -> list[dict]:
    """`samples` consecutive rows of exactly `seq_len` tokens cut from the text."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if len(ids) < samples * seq_len:
        raise InvalidSetting(
            f"The calibration text has {len(ids)} tokens; samples × seq_len = "
            f"{samples} × {seq_len} = {samples * seq_len} are needed.",
            "Pass more calibration text, or lower samples / seq_len.",
        )
    rows = [ids[i * seq_len : (i + 1) * seq_len] for i in range(samples)]
    return [{"input_ids": r, "attention_mask": [1] * len(r)} for r in rows]


def quantize_checkpoint(source: str, settings: dict, text: str, device: str) -> dict:
    """Quantize the checkpoint in `source` into the job's output folder;
    returns timings and usage."""
    import torch
    from gptqmodel import GPTQModel
    from transformers import AutoTokenizer

    from . import awq, gptq

    s = settings
    method = {"awq": awq, "gptq": gptq}[s["method"]]
    device = resolve_device(device)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(source)
    rows = calibration_rows(tok, text, s["samples"], s["seq_len"])
    cfg = method.config(s["bits"], s["group_size"], s["options"])
    gm = GPTQModel.load(source, cfg, device=device, dtype=torch.bfloat16)
    tasks.emit("loaded", seconds=time.perf_counter() - t0)
    track_progress(gm.model)
    t1 = time.perf_counter()
    gm.quantize(rows, batch_size=s["batch_size"], **method.quantize_kwargs(device))
    seconds = time.perf_counter() - t1
    out = tasks.output_dir()
    gm.save(str(out))
    tok.save_pretrained(str(out))
    for extra in ("generation_config.json", "chat_template.jinja"):
        if (Path(source) / extra).is_file() and not (out / extra).is_file():
            shutil.copy(Path(source) / extra, out / extra)
    ru = resource.getrusage(
        resource.RUSAGE_SELF
    )  # page faults and kernel time show the allocator's cost
    return {
        "quantize_seconds": seconds,
        "total_seconds": time.perf_counter() - t0,
        "user_cpu_s": ru.ru_utime,
        "system_cpu_s": ru.ru_stime,
        "minor_page_faults": ru.ru_minflt,
        "peak_rss_bytes": memory.peak_bytes(),
    }
