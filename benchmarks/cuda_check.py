"""On a CUDA machine: load the embedded model under every scheme's CUDA path and print one table.

    HF_HUB_OFFLINE=1 python benchmarks/cuda_check.py [--schemes ...] [--out FILE.json]

Needs: a CUDA torch, bitsandbytes with CUDA, gptqmodel (+ its CUDA kernels), optimum, and optionally
llama-cpp-python built with CMAKE_ARGS="-DGGML_CUDA=on". GPTQ/AWQ checkpoints are made on the GPU
with llamalab.quantize(device="cuda") (cached in LLAMALAB_CACHE). Each row says ok / the error.
Not run in this repository's CI (no GPU there); every row is a measurement when it is run.
"""

from __future__ import annotations

import argparse
import json
import time
import traceback
from pathlib import Path

SCHEMES = ("fp32", "bf16", "fp16", "int8", "nf4", "gptq", "gptq-8bit", "awq", "q4_1", "q8_0")


def environment() -> dict:
    import importlib.metadata as md

    import torch

    out = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    for p in ("transformers", "bitsandbytes", "gptqmodel", "optimum", "llama_cpp_python"):
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = None
    return out


def check(scheme: str) -> dict:
    import torch

    import llamalab

    row = {"scheme": scheme}
    t0 = time.perf_counter()
    try:
        s = llamalab.scheme(scheme)
        if s.family in ("gptq", "awq"):
            q = llamalab.quantize(
                "default", s.family, bits=int(s.bits), device="cuda", progress=False
            )
            row["quantize_s"] = q.quantize_seconds
        torch.cuda.reset_peak_memory_stats()
        m = llamalab.load("default", scheme, device="cuda")
        g = m.generate("What is the capital of France?", max_new_tokens=32, min_new_tokens=32)
        ppl = llamalab.perplexity(m, tokens=1024)
        row.update(
            ok=True,
            backend=m.backend,
            kernel=_kernel(m),
            weights_memory_mb=m.weights_memory_bytes / 1e6,
            decode_tokens_per_s=g.decode_tokens_per_s,
            ttft_s=g.ttft_s,
            peak_cuda_mb=g.peak_memory_bytes / 1e6,
            perplexity=ppl.value,
            answer=g.text[:60],
        )
        m.unload()
    except Exception as e:  # one failing scheme must not hide the others
        row.update(
            ok=False,
            error=f"{type(e).__name__}: {e}"[:300],
            trace=traceback.format_exc(limit=3)[-600:],
        )
    row["seconds"] = time.perf_counter() - t0
    return row


def _kernel(m) -> str:
    model = getattr(m.engine, "model", None)
    if model is None:
        return m.engine.name
    kinds = {type(mod).__name__ for mod in model.modules() if "Linear" in type(mod).__name__}
    return ", ".join(sorted(kinds))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemes", default=",".join(SCHEMES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "cuda_check.json"))
    args = ap.parse_args()
    import torch

    env = environment()
    print(json.dumps(env))
    if not torch.cuda.is_available():
        raise SystemExit(
            "cuda_check: torch sees no CUDA device; run this on a GPU machine with a CUDA torch."
        )
    rows = [check(s) for s in args.schemes.split(",")]
    cols = (
        "scheme",
        "ok",
        "backend",
        "kernel",
        "weights_memory_mb",
        "decode_tokens_per_s",
        "ttft_s",
        "peak_cuda_mb",
        "perplexity",
    )
    print(" | ".join(cols))
    for r in rows:
        print(
            " | ".join(
                f"{r[c]:.3g}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in cols
            )
            + ("" if r["ok"] else f" | {r['error']}")
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"environment": env, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
