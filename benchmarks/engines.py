"""The kit's overhead on each engine: LoadedModel.generate vs the raw library, same process, same
model object, same token ids, interleaved pairs in alternating order (raw-kit, kit-raw, ...),
medians.

    HF_HUB_OFFLINE=1 python benchmarks/engines.py [--runs 7] [--tokens 128] [--schemes bf16,q4_1]

Raw transformers = model.generate(min_new_tokens = max_new_tokens, greedy) with a streamer that
timestamps tokens; raw llama.cpp = a loop over Llama.generate (reset first, greedy). Decode tok/s =
(tokens − 1) / (last − first token time). Writes benchmarks/results/engines.json and engines.html.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from pairs import PROMPT, alternating, raw_transformers

import llamalab

OUT = Path(__file__).parent / "results"


def raw_llamacpp(m, ids, n):
    llm, times = m.engine.llm, []
    llm.reset()
    t0 = time.perf_counter()
    for _ in llm.generate(
        ids, temp=0.0, top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0, repeat_penalty=1.0
    ):
        times.append(time.perf_counter())
        if len(times) >= n:
            break
    return t0, times


def measure(scheme: str, runs: int, n: int) -> dict:
    m = llamalab.load("default", scheme)
    ids = m.engine.encode(PROMPT)
    raw = raw_llamacpp if m.engine.name == "llama.cpp" else raw_transformers
    m.generate(PROMPT, max_new_tokens=8)
    raw(m, ids, 8)
    res = {"raw": [], "kit": []}

    def run_raw():
        t0, ts = raw(m, ids, n)
        res["raw"].append(
            {
                "ttft_s": ts[0] - t0,
                "decode_tokens_per_s": (len(ts) - 1) / (ts[-1] - ts[0]),
                "total_s": ts[-1] - t0,
                "new_tokens": len(ts),
            }
        )

    def run_kit():
        g = m.generate(PROMPT, max_new_tokens=n, min_new_tokens=n)
        res["kit"].append(
            {
                "ttft_s": g.prefill_s,
                "decode_tokens_per_s": g.decode_tokens_per_s,
                "total_s": g.total_s,
                "new_tokens": g.new_tokens,
            }
        )

    alternating(runs, run_raw, run_kit)
    m.unload()
    med = {
        side: {
            k: statistics.median(r[k] for r in rows)
            for k in ("ttft_s", "decode_tokens_per_s", "total_s")
        }
        for side, rows in res.items()
    }
    return {
        "scheme": scheme,
        "engine": m.engine.name,
        "runs": runs,
        "new_tokens": n,
        "prompt_tokens": len(ids),
        "median": med,
        "decode_ratio_kit_over_raw": med["kit"]["decode_tokens_per_s"]
        / med["raw"]["decode_tokens_per_s"],
        "total_ratio_kit_over_raw": med["kit"]["total_s"] / med["raw"]["total_s"],
        "all": res,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--schemes", default="bf16,q4_1")
    args = ap.parse_args()
    rows = [measure(s, args.runs, args.tokens) for s in args.schemes.split(",")]
    for r in rows:
        print(
            f"{r['scheme']:>6} {r['engine']:<12} "
            f"raw {r['median']['raw']['decode_tokens_per_s']:.1f} tok/s  "
            f"kit {r['median']['kit']['decode_tokens_per_s']:.1f} tok/s  "
            f"decode ratio {r['decode_ratio_kit_over_raw']:.3f}"
            f"  total-time ratio {r['total_ratio_kit_over_raw']:.3f}"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "engines.json").write_text(
        json.dumps(
            {
                "note": "kit total_s includes chat-template encoding; "
                "raw total_s starts at the generate call",
                "rows": rows,
            },
            indent=2,
        )
    )
    import plotly.graph_objects as go

    fig = go.Figure(
        [
            go.Bar(
                name=side,
                x=[r["scheme"] for r in rows],
                y=[r["median"][side]["decode_tokens_per_s"] for r in rows],
            )
            for side in ("raw", "kit")
        ]
    )
    fig.update_layout(
        barmode="group",
        title="Decode speed: raw library vs llamalab (median, same process)",
        yaxis_title="tokens/s",
        template="plotly_white",
    )
    fig.write_html(OUT / "engines.html", include_plotlyjs="cdn")


if __name__ == "__main__":
    main()
