"""The quantizing subprocess: `python -m llamalab.quantize.worker SPEC.json`.

Run apart from the notebook kernel so gptqmodel's imports, its ~1 GB peak and allocator settings
(set in the environment before torch starts) stay out of the learner's process. Progress goes to
stdout as JSON lines ({"event": "layer", "i": 3, "n": 30}); gptqmodel's own log goes to stderr.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")   # ≤2-core machines crash without it (gptqmodel 7.6)


def emit(event: str, **data) -> None:
    print("\n" + json.dumps({"event": event, **data}), flush=True)   # own line: gptqmodel redraws with \r


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
                emit("layer", i=i, n=len(layers))
        return pre
    for i, layer in enumerate(layers):
        layer.register_forward_pre_hook(hook(i))


def calibration_rows(tok, text: str, samples: int, seq_len: int) -> list[dict]:
    """`samples` consecutive rows of exactly `seq_len` tokens cut from the text."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if len(ids) < samples * seq_len:
        emit("error", message=f"The calibration text has {len(ids)} tokens; samples × seq_len = "
                              f"{samples} × {seq_len} = {samples * seq_len} are needed.")
        sys.exit(2)
    rows = [ids[i * seq_len:(i + 1) * seq_len] for i in range(samples)]
    return [{"input_ids": r, "attention_mask": [1] * len(r)} for r in rows]


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    import torch
    from gptqmodel import GPTQModel
    from transformers import AutoTokenizer

    from . import awq, gptq
    method = awq if spec["settings"]["method"] == "awq" else gptq
    s = spec["settings"]
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(spec["source"])
    rows = calibration_rows(tok, spec["text"], s["samples"], s["seq_len"])
    cfg = method.config(s["bits"], s["group_size"], s["options"])
    gm = GPTQModel.load(spec["source"], cfg, device=spec["device"], dtype=torch.bfloat16)
    emit("loaded", seconds=time.perf_counter() - t0)
    track_progress(gm.model)
    t1 = time.perf_counter()
    gm.quantize(rows, batch_size=s["batch_size"], **method.quantize_kwargs(spec["device"]))
    seconds = time.perf_counter() - t1
    out = Path(spec["tmp_out"])
    gm.save(str(out))
    tok.save_pretrained(str(out))
    for extra in ("generation_config.json", "chat_template.jinja"):
        if (Path(spec["source"]) / extra).is_file() and not (out / extra).is_file():
            shutil.copy(Path(spec["source"]) / extra, out / extra)
    ru = resource.getrusage(resource.RUSAGE_SELF)      # page faults and kernel time show the allocator's cost
    emit("done", quantize_seconds=seconds, total_seconds=time.perf_counter() - t0, user_cpu_s=ru.ru_utime,
         system_cpu_s=ru.ru_stime, minor_page_faults=ru.ru_minflt, peak_rss_bytes=ru.ru_maxrss * 1024)


if __name__ == "__main__":
    main(sys.argv[1])
