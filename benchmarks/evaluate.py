"""evaluate()'s time per example: in-process llama.cpp vs the same GGUF served by llamalab.serve(),
with bare generate() calls on the same prompts as the baseline (what evaluate adds: the scorer, the
early-stop hook, the rows), all in one run.

    python benchmarks/evaluate.py --scheme q8_0 --threads 1 --runs 3
Writes benchmarks/results/evaluate.json. The data: 8 capital-city questions scored with `contains`,
greedy, max_new_tokens 16. Run on a quiet machine; numbers are never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab
from llamalab import evaluate, serve
from llamalab.serving.server import gguf_for

PAIRS = [
    ("France", "Paris"),
    ("Italy", "Rome"),
    ("Japan", "Tokyo"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Egypt", "Cairo"),
    ("Canada", "Ottawa"),
    ("Kenya", "Nairobi"),
]
DATA = [{"prompt": f"What is the capital of {c}?", "expected": a} for c, a in PAIRS]
MAX_NEW = 16


def per_example(m, runs: int) -> dict:
    """Seconds per example: evaluate() and bare generate() on the same prompts, alternating."""
    m.generate(DATA[0]["prompt"], max_new_tokens=4)  # warm-up
    ev, bare, result = [], [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        for row in DATA:
            m.generate(row["prompt"], max_new_tokens=MAX_NEW, temperature=0.0)
        bare.append((time.perf_counter() - t0) / len(DATA))
        t0 = time.perf_counter()
        result = evaluate(m, DATA, "contains", max_new_tokens=MAX_NEW)
        ev.append((time.perf_counter() - t0) / len(DATA))
    assert result is not None
    rows = result.rows
    return {
        "evaluate_s_per_example": ev,
        "generate_s_per_example": bare,
        "evaluate_over_generate": statistics.median(ev) / statistics.median(bare),
        "ttft_ms_median": 1e3 * float(rows.ttft_s.median()),
        "decode_tok_s_median": float(rows.decode_tokens_per_s.median()),
        "new_tokens_median": float(rows.new_tokens.median()),
        "task_score": result.score,
        "task_interval": [result.low, result.high],
    }


def rescore_s(m) -> float:
    """Seconds per example to score replies already generated (the scorer alone)."""
    result = evaluate(m, DATA[:2], "contains", max_new_tokens=4)
    t0 = time.perf_counter()
    for _ in range(50):
        result.rescore("contains")
    return (time.perf_counter() - t0) / (50 * 2)


def in_process(gguf: str, threads: int, runs: int) -> dict:
    m = llamalab.load(gguf, "gguf", device="cpu", n_threads=threads)
    try:
        out = per_example(m, runs)
        out["rescore_s_per_example"] = rescore_s(m)
        peaks = [
            m.generate(r["prompt"], max_new_tokens=MAX_NEW).peak_memory_bytes for r in DATA[:2]
        ]
        out["peak_rss_mb"] = max(p for p in peaks if p) / 1e6
        return out
    finally:
        m.unload()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scheme", default="q8_0")
    ap.add_argument("--threads", type=int, default=1, help="1: the fastest on 2 busy cores")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "evaluate.json"))
    a = ap.parse_args()
    gguf, _, _ = gguf_for("default", a.scheme)
    t0 = time.perf_counter()
    local = in_process(gguf, a.threads, a.runs)
    print("in-process done", flush=True)
    with serve(gguf, context=512, threads=a.threads) as server:
        remote = per_example(server.connect(), a.runs)
    print("served done", flush=True)
    local_again = in_process(gguf, a.threads, a.runs)  # the baseline again: drift check
    base = statistics.median(
        local["evaluate_s_per_example"] + local_again["evaluate_s_per_example"]
    )
    out = {
        "conditions": {
            "gguf": Path(gguf).name,
            "threads": a.threads,
            "runs": a.runs,
            "examples": len(DATA),
            "max_new_tokens": MAX_NEW,
            "scorer": "contains",
            "cpus": os.cpu_count(),
            "load_avg_at_end": os.getloadavg(),
            "note": "shared 2-core VM; other jobs were running (see load_avg)",
        },
        "in_process": local,
        "in_process_again": local_again,
        "served": remote,
        "served_over_in_process_s_per_example": (
            statistics.median(remote["evaluate_s_per_example"]) / base
        ),
        "wall_s": time.perf_counter() - t0,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
