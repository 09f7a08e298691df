"""LoRA adapters served as adapters (issue 22): what switching costs and what an applied adapter
costs in decode speed, on one llama.cpp server, against the base in the same run.

1. adapter_switch_s: round trip of POST /lora-adapters (server.use_adapter), median.
2. adapter_decode_ratio: served decode tokens/s with the adapter applied ÷ with none, the two
   measured alternately on the same server, prompt and thread count (exactly --tokens tokens).

The adapter is peft's LoRA at rank --r on every linear layer of the embedded SmolLM2-135M with
random A and B (init_lora_weights=False): its cost depends on its shapes, not on what it learned,
so no training run is needed. Exported with llamalab.export_gguf (llama.cpp's
convert_lora_to_gguf.py) beside the base GGUF.

    python benchmarks/serve_adapters.py --base q8_0 --r 16 --runs 5 --tokens 64 --threads 1
Writes benchmarks/results/serve_adapters.json. Numbers are never asserted; run on a quiet machine
(the load average at the start and end is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab
from llamalab.core.metrics import metric

PROMPT = "Tell me a story about a dragon."


def random_adapter(r: int, out: Path) -> Path:
    """A rank-r LoRA with random weights on every linear layer of the embedded model, saved by
    peft as a training run would save it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from llamalab.runtime.files import embedded

    base = embedded.ensure_model(verbose=False)
    model = AutoModelForCausalLM.from_pretrained(str(base))
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules="all-linear", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def decode_rate(served, tokens: int) -> float:
    return served.generate(PROMPT, max_new_tokens=tokens, min_new_tokens=tokens).decode_tokens_per_s


def measure(server, name: str, runs: int, tokens: int) -> dict:
    served = server.connect()
    served.generate(PROMPT, max_new_tokens=8)  # warm the slot
    switches, off, on = [], [], []
    for _ in range(runs):
        for target, rates in ((None, off), (name, on)):
            t0 = time.perf_counter()
            server.use_adapter(target)
            switches.append(time.perf_counter() - t0)
            rates.append(decode_rate(served, tokens))
    return {
        "adapter_switch_s": statistics.median(switches),
        "adapter_switch_s_all": switches,
        "decode_tokens_per_s_base": statistics.median(off),
        "decode_tokens_per_s_adapter": statistics.median(on),
        "decode_base_all": off,
        "decode_adapter_all": on,
        "adapter_decode_ratio": statistics.median(on) / statistics.median(off),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="q8_0", help="the base GGUF type")
    ap.add_argument("--r", type=int, default=16, help="LoRA rank")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve_adapters.json"))
    a = ap.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = random_adapter(a.r, Path(tmp) / "adapter")
        export = llamalab.export_gguf(folder, a.base, check=False, verbose=False)
        name = f"r{a.r}"
        with llamalab.serve(
            export.base, adapters={name: export.path}, parallel=1, context=512, threads=a.threads
        ) as server:
            result = measure(server, name, a.runs, a.tokens)
    out = {
        "what": "llama.cpp server (xllamacpp): LoRA switch latency and decode with vs without",
        "model": "smollm2-135m-instruct",
        "base_gguf": Path(export.base).name,
        "adapter_gguf_bytes": export.bytes,
        "r": a.r,
        "target_modules": "all-linear",
        "runs": a.runs,
        "tokens": a.tokens,
        "threads": a.threads,
        "cpu": platform.processor() or platform.machine(),
        "load_average_start_end": [load_before[0], os.getloadavg()[0]],
        **result,
        "labels": {k: metric(k).label for k in ("adapter_switch_s", "adapter_decode_ratio")},
    }
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: v for k, v in out.items() if not k.endswith("_all")}, indent=2))


if __name__ == "__main__":
    main()
