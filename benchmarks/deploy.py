"""Serving speed, measured against baselines in the same run (issue 9's performance goals).

1. Single-stream decode tokens/s: llama.cpp's server (llamalab.serve(), xllamacpp) ÷ llama.cpp
   in-process (llama-cpp-python) on the same GGUF and thread count. Goal ≥ 0.8.
2. Continuous batching: aggregate output tokens/s at concurrency 8 ÷ concurrency 1 (load_test,
   ignore_eos so every request makes exactly --tokens tokens). Goal ≥ 2.
3. The load-test client's CPU share during the run (CPU seconds of this process ÷ wall seconds): it
   must not be the bottleneck.

    python benchmarks/deploy.py --threads 2 --runs 3 --tokens 64 --requests 16
Writes benchmarks/results/deploy.json. Run on a quiet machine; numbers are never asserted.
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
from llamalab import load_test, serve
from llamalab.serving.server import gguf_for

PROMPT = "Tell me a story about a dragon."
PROMPTS = [
    PROMPT,
    "Explain what a GPU does.",
    "Write a poem about the sea.",
    "Describe a busy market.",
]


def in_process(gguf: str, threads: int, runs: int, tokens: int) -> list[float]:
    m = llamalab.load(gguf, "gguf", device="cpu", n_threads=threads)
    try:
        m.generate(PROMPT, max_new_tokens=8)
        return [
            m.generate(PROMPT, max_new_tokens=tokens, min_new_tokens=tokens).decode_tokens_per_s
            for _ in range(runs)
        ]
    finally:
        m.unload()


def served(server, runs: int, tokens: int) -> list[float]:
    served_model = server.connect()
    served_model.generate(PROMPT, max_new_tokens=8)
    # min_new_tokens = max_new_tokens: the server is asked to ignore end-of-sequence (exactly
    # `tokens` tokens)
    return [
        served_model.generate(
            PROMPT, max_new_tokens=tokens, min_new_tokens=tokens
        ).decode_tokens_per_s
        for _ in range(runs)
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scheme", default="q4_k_m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--requests", type=int, default=16, help="requests per concurrency level")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "deploy.json"))
    a = ap.parse_args()
    gguf, _, _ = gguf_for("default", a.scheme)
    t0, load_before = time.perf_counter(), os.getloadavg()
    local = in_process(gguf, a.threads, a.runs, a.tokens)
    with serve(gguf, parallel=8, context=512, threads=a.threads) as server:
        setup_s = server.start_s
        remote = served(server, a.runs, a.tokens)
        local_again = in_process(
            gguf, a.threads, a.runs, a.tokens
        )  # the baseline again: drift check
        lt = load_test(
            server,
            PROMPTS,
            concurrency=[1, 8],
            requests=a.requests,
            max_new_tokens=a.tokens,
            timeout=120,
        )
    s = lt.summary.set_index("concurrency")
    base = statistics.median(local + local_again)
    out = {
        "conditions": {
            "gguf": Path(gguf).name,
            "threads": a.threads,
            "runs": a.runs,
            "tokens": a.tokens,
            "cpus": os.cpu_count(),
            "load_avg_before": load_before,  # 1/5/15-minute load: how quiet the machine was
            "load_avg_at_end": os.getloadavg(),
        },
        "server_start_s": setup_s,
        "in_process_decode_tok_s": local + local_again,
        "served_decode_tok_s": remote,
        "served_over_in_process": statistics.median(remote) / base,
        "output_tok_s": {int(c): float(s.loc[c, "output_throughput"]) for c in s.index},
        "ttft_p50_ms": {int(c): 1e3 * float(s.loc[c, "ttft_p50_s"]) for c in s.index},
        "c8_over_c1": float(s.loc[8, "output_throughput"] / s.loc[1, "output_throughput"]),
        "client_cpu_share": {int(c): float(s.loc[c, "client_cpu_share"]) for c in s.index},
        "server_rss_peak_mb": {
            int(c): float(s.loc[c, "server_rss_peak_bytes"]) / 1e6 for c in s.index
        },
        "wall_s": time.perf_counter() - t0,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
