"""The estimator and the speed law at real shapes on this CPU, with random weights.

For Llama 3.2 1B, Qwen2.5 1.5B and Llama 3.2 3B (random bf16 weights at the published shape, written
once by `llamalab.random_checkpoint`; GGUFs of the same shapes by `llamalab.random_gguf`, then
llama.cpp's own quantizer) under each scheme that runs on this CPU, each in a fresh process: load
through llamalab with a context of the prompt + 64 tokens (llama.cpp's window), generate (one
warm-up token, then --runs timed generations of --tokens) from the short chat prompt, or from
--prompt-tokens of plain text, and compare

- total (the target, ±10 %): the estimate's total (weights + KV cache + activations + runtime) at
  the context the run holds (transformers: prompt + new tokens; llama.cpp: its window) with the
  process's peak RSS while generating (20 Hz samples). RSS, because each term of the estimate is
  resident memory however it is backed: llama.cpp's weights are its mapped GGUF (file-backed),
  transformers' bf16 weights stay views of the mapped checkpoint, the runtime term was measured as
  RSS. The anonymous and file-backed peaks are shown beside it, and the container's (the cgroup's
  usage less inactive file pages: the checkpoint's page cache counts there until reclaimed);
- peak: the estimate's peak (the larger of running and loading) with the process's RSS high-water
  mark (VmHWM: imports, load and generation, the file pages a load reads included) and the
  anonymous peak of the load;
- decode: the speed law (this machine's measured read bandwidth ÷ bytes per token,
  `llamalab.roofline(..., "this")`) with the median measured decode tokens/s.

Quality is meaningless on random weights; memory and speed are real. A case whose estimated peak
exceeds --budget is skipped and listed as such.

    python benchmarks/real_shapes.py                    # every model × scheme: about 1 h here
    python benchmarks/real_shapes.py --models llama-3.2-1b --schemes int8 q4_k_m
    python benchmarks/real_shapes.py --schemes q8_0 q4_k_m --prompt-tokens 1900 --runs 1
    python benchmarks/real_shapes.py --recompute    # the stored rows against the estimator as it is
Writes benchmarks/results/real_shapes.json (rows merged by model × scheme × prompt) and
real_shapes.md; --out DIR writes them to another folder (results/real_shapes-avx512-bf16/ holds
Llama 3.2 1B on a second CPU, one with AVX-512 and bf16 instructions).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab
from llamalab.measure.random_checkpoint import LABEL, gguf_shape, random_checkpoint
from llamalab.runtime.files.gguf import quantize_file

MODELS = ("llama-3.2-1b", "qwen2.5-1.5b", "llama-3.2-3b")
SCHEMES = ("fp32", "bf16", "int8", "nf4", "q8_0", "q4_k_m")
PROMPT = "The capital of France is"
RESULTS = Path(__file__).parent / "results"
GB = 1e9


@dataclass(frozen=True)
class Setup:
    """What every case runs: new tokens per timed generation, timed generations, the prompt (0: the
    short chat prompt; N: N tokens of plain text) and the memory a case's estimate may take."""

    tokens: int = 6
    runs: int = 3
    prompt_tokens: int = 0
    budget: float = 12


WINDOW_SPARE = 64  # the context asked of load() beyond the prompt: llama.cpp's window for the reply


def source(model: str, scheme: str) -> str:
    """What to load, written once: the random checkpoint's folder, or a random GGUF of the same
    shape (F16, then llama_model_quantize)."""
    if llamalab.scheme(scheme).is_gguf:
        f16 = llamalab.random_gguf(gguf_shape(model))
        return str(f16 if scheme == "f16" else quantize_file(f16, scheme))
    return str(random_checkpoint(model))


def prompt_of(m, tokens: int) -> str:
    """The short chat prompt, or about `tokens` tokens of the bundled held-out text (plain)."""
    if not tokens:
        return PROMPT
    from llamalab.data import texts

    ids = m.engine.encode(texts.heldout().text, chat=False)[:tokens]
    return m.engine.decode(ids)


def measure(path: str, scheme: str, a: Setup) -> dict:
    """One load and its generations, in this (fresh) process: memory by kind and decode speed."""
    import torch  # noqa: F401 - the runtime the estimate's overhead counts, resident before load
    import transformers  # noqa: F401

    from llamalab.core import memory

    gguf = llamalab.scheme(scheme).is_gguf
    base = memory.resident()
    m = llamalab.load(path, scheme, device="cpu", context=a.prompt_tokens + WINDOW_SPARE)
    loaded = memory.resident()
    left = [] if gguf else memory.mapped_ranges(Path(path) / "model.safetensors")
    prompt, chat = prompt_of(m, a.prompt_tokens), not a.prompt_tokens
    m.generate(prompt, max_new_tokens=1, min_new_tokens=1, chat=chat)  # warm-up
    gens = [
        m.generate(prompt, max_new_tokens=a.tokens, min_new_tokens=a.tokens, chat=chat)
        for _ in range(a.runs)
    ]
    top = lambda key: max(
        (getattr(g, key) for g in gens if getattr(g, key) is not None), default=None
    )
    return {
        "baseline_rss_bytes": base.rss_bytes,
        "load_s": m.load_s,
        "weights_memory_bytes": m.weights_memory_bytes,
        "after_load_anon_bytes": loaded.anon_bytes,
        "after_load_file_bytes": loaded.file_bytes,
        "load_anon_peak_bytes": base.anon_bytes + (m.load_anon_peak_bytes or 0),
        "checkpoint_mapped_after_load": bool(left),
        "prompt_tokens": gens[0].prompt_tokens,
        "context": m.engine.context_length if gguf else gens[0].prompt_tokens + a.tokens,
        "peak_rss_bytes": top("peak_memory_bytes"),
        "peak_anon_bytes": top("peak_anon_bytes"),
        "peak_file_bytes": top("peak_file_bytes"),
        "peak_container_bytes": top("peak_container_bytes"),
        "hwm_bytes": memory.peak_bytes(),
        "decode_tokens_per_s": statistics.median(g.decode_tokens_per_s for g in gens),
        "prefill_s": statistics.median(g.prefill_s for g in gens),
        "new_tokens": a.tokens,
        "runs": a.runs,
    }


def _in_fresh_process(fn, *args):
    """One case in its own interpreter, so the cases before it do not inflate its peak."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def case(model: str, scheme: str, a: Setup) -> dict:
    """Measure one model × scheme (or say why not) and set the estimate beside it."""
    row = {"model": model, "scheme": scheme, "prompt": a.prompt_tokens or "chat"}
    planned = llamalab.estimate(model, scheme, context=a.prompt_tokens + WINDOW_SPARE, device="cpu")
    if planned.peak_bytes > a.budget * GB:
        return row | {
            "skipped": f"estimated peak {planned.peak_bytes / GB:.1f} GB > the {a.budget:g} GB "
            "this shared machine allows a run"
        }
    try:
        path = source(model, scheme)
        row |= _in_fresh_process(measure, path, scheme, a)
    except Exception as e:  # one case failing leaves the others' rows
        return row | {"skipped": f"failed: {type(e).__name__}: {str(e)[:300]}"}
    return row | compare(model, scheme, row)


def compare(model: str, scheme: str, m: dict) -> dict:
    """The estimate and the speed law at the context the run held, beside what it measured."""
    return estimate_columns(model, scheme, m) | speed_columns(model, scheme, m)


def estimate_columns(model: str, scheme: str, m: dict) -> dict:
    """The estimate at the context the run held, and its errors in % of the measured figures."""
    est = llamalab.estimate(model, scheme, context=m["context"], device="cpu")
    err = lambda e, x: 100 * (e - x) / x if x else None
    return {
        "engine": getattr(est, "engine", ""),
        "estimate": dict(est.breakdown),
        "estimated_weights_bytes": est.breakdown["weights"],
        "weights_error_pct": err(est.breakdown["weights"], m["weights_memory_bytes"]),
        "estimated_total_bytes": est.total_bytes,
        "total_error_pct": err(est.total_bytes, m["peak_rss_bytes"]),
        "estimated_peak_bytes": est.peak_bytes,
        "peak_error_pct": err(est.peak_bytes, m["hwm_bytes"]),
    }


def speed_columns(model: str, scheme: str, m: dict) -> dict:
    """The speed law's decode tokens/s (this machine's measured bandwidth ÷ bytes per token) and
    the share of it the run reached."""
    try:
        roof = llamalab.roofline(model, scheme, "this", context=m["context"])
        predicted = roof["tokens_per_s_per_sequence"]
    except Exception:  # the speed law could not answer here
        predicted = None
    return {
        "predicted_decode_tokens_per_s": predicted,
        "decode_share_of_speed_law": m["decode_tokens_per_s"] / predicted if predicted else None,
    }


def recompute(out: Path) -> dict:
    """The stored measurements against the estimator as it is now (after a change to it), without
    measuring again; the speed law's figures stay those of their run."""
    result = json.loads(out.read_text())
    for r in result["rows"]:
        if "skipped" not in r:
            r.update(estimate_columns(r["model"], r["scheme"], r))
    out.write_text(json.dumps(result, indent=1))
    return result


def machine() -> dict:
    import importlib.metadata as md

    packages = ("torch", "transformers", "torchao", "bitsandbytes", "llama_cpp_python")
    return {
        "machine": str(llamalab.hardware()),
        "bandwidth": str(llamalab.memory_bandwidth()),
        "python": platform.python_version(),
        "versions": {p: md.version(p) for p in packages},
        "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "weights": LABEL,
    }


def _key(r: dict) -> tuple:
    return r["model"], r["scheme"], str(r.get("prompt", "chat"))


def merge(out: Path, rows: list[dict], meta: dict) -> dict:
    """Rows of earlier runs, replaced by this run's where model × scheme × prompt are the same."""
    old = json.loads(out.read_text()) if out.is_file() else {"rows": [], "runs": []}
    new = {_key(r) for r in rows}
    order = {(m, s): i for i, (m, s) in enumerate((m, s) for m in MODELS for s in SCHEMES)}
    rank = lambda r: (order.get(r[:2], 999), r[2] != "chat", r[2])
    merged = sorted(
        [r for r in old["rows"] if _key(r) not in new] + rows, key=lambda r: rank(_key(r))
    )
    runs = [r for r in old.get("runs", []) if r.get("when") != meta["when"]]  # this run: once
    done = {c for r in old.get("runs", []) if r.get("when") == meta["when"] for c in r["cases"]}
    runs.append(meta | {"cases": sorted(done | {" ".join(k) for k in new})})
    result = {"rows": merged, "runs": runs}
    out.write_text(json.dumps(result, indent=1))
    return result


def _gb(v) -> str:
    return "" if v is None else f"{v / GB:.2f}"


def _pct(v) -> str:
    return "" if v is None else f"{v:+.1f}"


COLUMNS = (
    "model | scheme | engine | prompt tokens | context | est. total GB | peak RSS GB | "
    "**total error %** | peak anon GB | peak file GB | container peak GB | est. peak GB | "
    "VmHWM GB | peak error % | anon load peak GB | weights error % | "
    "checkpoint mapped after load | decode tok/s | speed law tok/s | share"
)


def table_row(r: dict) -> str:
    if "skipped" in r:
        return f"| {r['model']} | {r['scheme']} | skipped: {r['skipped']} |" + " |" * 17
    share, pred = r.get("decode_share_of_speed_law"), r.get("predicted_decode_tokens_per_s")
    cells = [
        r["model"],
        r["scheme"],
        r.get("engine", ""),
        str(r["prompt_tokens"]),
        str(r["context"]),
        _gb(r["estimated_total_bytes"]),
        _gb(r["peak_rss_bytes"]),
        f"**{_pct(r['total_error_pct'])}**",
        _gb(r["peak_anon_bytes"]),
        _gb(r["peak_file_bytes"]),
        _gb(r.get("peak_container_bytes")),
        _gb(r["estimated_peak_bytes"]),
        _gb(r["hwm_bytes"]),
        _pct(r["peak_error_pct"]),
        _gb(r.get("load_anon_peak_bytes")),
        _pct(r["weights_error_pct"]),
        _mapped(r),
        f"{r['decode_tokens_per_s']:.2f}",
        "" if pred is None else f"{pred:.2f}",
        "" if share is None else f"{share:.0%}",
    ]
    return "| " + " | ".join(cells) + " |"


def _mapped(r: dict) -> str:
    """Whether the checkpoint file stayed mapped: by design for bf16 (its weights are views of the
    file), a leak for a scheme quantized while loading."""
    if not r["checkpoint_mapped_after_load"]:
        return "no"
    return (
        "yes: the weights" if llamalab.scheme(r["scheme"]).quantized_at == "none" else "YES: left"
    )


def markdown(result: dict) -> str:
    last = result["runs"][-1] if result["runs"] else {}
    return "\n".join(
        [
            "# The estimator at real shapes on this CPU (random weights)",
            "",
            f"Weights: {LABEL}. Written by `benchmarks/real_shapes.py` (its docstring says what "
            "each column compares). Errors are (estimate − measured) ÷ measured. Target: the total "
            "within ±10 %, the estimate's total vs the process's peak RSS while generating.",
            "",
            "Machine (last run): " + str(last.get("machine", "")).replace("\n", "; "),
            f"Bandwidth (last run): {last.get('bandwidth')}; versions: {last.get('versions')}; "
            f"load average at its start: {last.get('load_average')}.",
            "",
            "| " + COLUMNS + " |",
            "|" + "---|" * (COLUMNS.count("|") + 1),
            *map(table_row, result["rows"]),
            "",
        ]
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--schemes", nargs="+", default=list(SCHEMES))
    ap.add_argument("--tokens", type=int, default=6, help="new tokens per timed generation")
    ap.add_argument("--runs", type=int, default=3, help="timed generations per case (median)")
    ap.add_argument(
        "--prompt-tokens", type=int, default=0, help="0: the short chat prompt; N: N tokens of text"
    )
    ap.add_argument("--budget", type=float, default=12, help="GB a case's estimated peak may take")
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument(
        "--recompute", action="store_true", help="only redo the estimates of the stored rows"
    )
    a = ap.parse_args()
    out = Path(a.out)
    if a.recompute:
        (out / "real_shapes.md").write_text(markdown(recompute(out / "real_shapes.json")))
        return
    setup = Setup(a.tokens, a.runs, a.prompt_tokens, a.budget)
    meta = machine()
    out.mkdir(parents=True, exist_ok=True)
    for model in a.models:
        for scheme in a.schemes:
            row = case(model, scheme, setup)
            print(summary(row), flush=True)
            result = merge(out / "real_shapes.json", [row], meta)  # kept case by case
            (out / "real_shapes.md").write_text(markdown(result))


def summary(r: dict) -> str:
    what = f"{r['model']:>14} {r['scheme']:>7} {r['prompt']!s:>5} "
    if "skipped" in r:
        return what + r["skipped"]
    return what + (
        f"est {_gb(r['estimated_total_bytes'])} GB, peak RSS {_gb(r['peak_rss_bytes'])} GB "
        f"({_pct(r['total_error_pct'])} %), anon {_gb(r['peak_anon_bytes'])}, file "
        f"{_gb(r['peak_file_bytes'])}; decode {r['decode_tokens_per_s']:.2f} tok/s"
    )


if __name__ == "__main__":
    main()
