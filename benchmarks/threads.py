"""Why the Playground (a worker thread) can decode slower than `generate()` in a cell (the main thread).

torch's CPU build uses GNU OpenMP. Every Python thread that runs a parallel torch op gets its own
OpenMP thread team, and the teams stay alive. Once there are more OpenMP threads than cores, libgomp
stops spin-waiting between parallel regions (its "throttled" spin count, see GOMP_SPINCOUNT in the
libgomp manual), and a small model's decode step, made of many tiny parallel ops, pays for waking
threads every time. So a worker thread is as fast as the main thread only until the main thread
has run a parallel torch op. This script measures exactly that, in one process:

    python benchmarks/threads.py --runs 3 --tokens 64
Writes benchmarks/results/threads.json. Run on a quiet machine; numbers are never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import llamalab  # noqa: E402

PROMPT = "Tell me a story about a dragon."


def in_worker(fn, runs: int) -> list[float]:
    """`runs` calls of fn in one fresh worker thread (as the Playground does per click)."""
    out: list[float] = []
    t = threading.Thread(target=lambda: out.extend(fn() for _ in range(runs)))
    t.start()
    t.join()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scheme", default="bf16")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=64)
    a = ap.parse_args()
    import torch
    m = llamalab.load("default", a.scheme, device="cpu")
    decode = lambda: m.generate(PROMPT, max_new_tokens=a.tokens, min_new_tokens=a.tokens).decode_tokens_per_s  # noqa: E731
    rows = {"worker, main thread has not run torch ops": in_worker(decode, a.runs)}
    torch.mm(torch.randn(512, 512), torch.randn(512, 512))          # the main thread's first OpenMP team
    rows["worker, after the main thread ran one"] = in_worker(decode, a.runs)
    rows["main thread"] = [decode() for _ in range(a.runs)]
    result = {"scheme": a.scheme, "new_tokens": a.tokens, "torch_threads": torch.get_num_threads(),
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "load_average": os.getloadavg(),
              "when": time.strftime("%Y-%m-%d %H:%M:%S"),
              "decode_tok_s_median": {k: statistics.median(v) for k, v in rows.items()}, "runs": rows}
    out = Path(__file__).parent / "results" / "threads.json"
    out.write_text(json.dumps(result, indent=1))
    for k, v in result["decode_tok_s_median"].items():
        print(f"{k:<45}{v:8.1f} tok/s")


if __name__ == "__main__":
    main()
