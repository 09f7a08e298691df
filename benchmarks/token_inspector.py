"""What the token inspector costs per answer token on the embedded model: in-process (transformers
bf16, llama.cpp Q4_K_M) and served (the kit's llama.cpp server, the same Q4_K_M GGUF, logprobs on).

Each way alternates `inspect_tokens` (the greedy answer, then scoring it: teacher forcing locally,
the server's logprobs when served) with a plain `generate()` of the same answer length, so the
ratio isolates what inspecting adds over answering. Greedy, one prompt, medians of --runs.

    python benchmarks/token_inspector.py --runs 5 --tokens 32
Writes benchmarks/results/token_inspector.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pairs import PROMPT, alternating

import llamalab


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench(label: str, m, runs: int, n: int, against=None) -> dict:
    view = llamalab.inspect_tokens(m, PROMPT, against=against, max_new_tokens=n)  # warm-up
    tokens = len(view.steps)
    m.generate(PROMPT, max_new_tokens=tokens, min_new_tokens=tokens)
    inspect_s, generate_s = [], []
    alternating(
        runs,
        lambda: inspect_s.append(
            timed(lambda: llamalab.inspect_tokens(m, PROMPT, against=against, max_new_tokens=n))
        ),
        lambda: generate_s.append(
            timed(lambda: m.generate(PROMPT, max_new_tokens=tokens, min_new_tokens=tokens))
        ),
    )
    med_i, med_g = statistics.median(inspect_s), statistics.median(generate_s)
    row = {
        "way": label,
        "engine": m.engine.name,
        "scheme": m.scheme_name,
        "runs": runs,
        "answer_tokens": tokens,
        "inspect_s_per_token": med_i / tokens,
        "generate_s_per_token": med_g / tokens,
        "inspect_over_generate": med_i / med_g,
        "entropy_complete": view.entropy_complete,
    }
    print(json.dumps(row), flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "token_inspector.json")
    )
    a = ap.parse_args()
    rows: list[dict] = []

    def keep(row: dict) -> None:  # written after each row: a slow machine keeps what it measured
        rows.append(row)
        result = {
            "benchmark": "token inspector time per answer token vs plain generation",
            "prompt": PROMPT,
            "max_new_tokens": a.tokens,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "load_average": os.getloadavg(),
            "rows": rows,
        }
        Path(a.out).write_text(json.dumps(result, indent=1) + "\n")

    bf16 = llamalab.load("default", "bf16", device="cpu")
    keep(bench("in-process", bf16, a.runs, a.tokens))
    q4 = llamalab.load("default", "q4_k_m", device="cpu")
    keep(bench("in-process", q4, a.runs, a.tokens))
    keep(bench("in-process, bf16 against q4_k_m", bf16, a.runs, a.tokens, against=q4))
    with llamalab.serve("default", scheme="q4_k_m", parallel=1, context=512) as server:
        served = server.connect()
        keep(bench("served", served, a.runs, a.tokens))
        keep(bench("served, against in-process q4_k_m", served, a.runs, a.tokens, q4))
    bf16.unload()
    q4.unload()
    print("wrote", a.out)


if __name__ == "__main__":
    main()
