"""Why every torch op of the kit runs on one thread (llamalab/core/torch_thread.py), measured.

torch's CPU build uses GNU OpenMP. Every Python thread that runs a parallel torch op gets its own
OpenMP thread team, and the teams stay alive. Once there are more OpenMP threads than cores, libgomp
stops spin-waiting between parallel regions (its "throttled" spin count, see GOMP_SPINCOUNT in the
libgomp manual), and a small model's decode step, made of many tiny parallel ops, pays for waking
threads every time. Before the torch thread, the Playground (a worker thread) decoded ~1/3 slower
than a cell. Now `generate()` runs on the torch thread whichever thread calls it; the last row
shows what still costs speed: torch ops run directly on another thread (here the main thread).

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

import llamalab

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
    m = llamalab.load("default", a.scheme, device="cpu")
    decode = lambda: (
        m.generate(PROMPT, max_new_tokens=a.tokens, min_new_tokens=a.tokens).decode_tokens_per_s
    )
    rows = {
        "generate() from the main thread": [decode() for _ in range(a.runs)],
        "generate() from a worker thread": in_worker(decode, a.runs),
    }
    import torch

    torch.mm(torch.randn(512, 512), torch.randn(512, 512))  # a torch op outside the torch thread
    rows["after the main thread ran a torch op itself"] = [decode() for _ in range(a.runs)]
    result = {
        "scheme": a.scheme,
        "new_tokens": a.tokens,
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "decode_tokens_per_s_median": {k: statistics.median(v) for k, v in rows.items()},
        "runs": rows,
    }
    out = Path(__file__).parent / "results" / "threads.json"
    out.write_text(json.dumps(result, indent=1))
    for k, v in result["decode_tokens_per_s_median"].items():
        print(f"{k:<48}{v:8.1f} tokens/s")


if __name__ == "__main__":
    main()
