"""Kit overhead and estimator accuracy, per scheme, on the embedded model.

For each scheme: load once through llamalab, then alternate llamalab `generate()` and a raw
transformers `model.generate()` on the same model object and the same prompt ids (greedy, exactly
N new tokens), so the ratio isolates what the kit adds (streaming text, stop checks, memory
sampler). Each scheme runs in a fresh process. Reports medians of >= 5 runs, the kit/raw ratios
(goal >= 0.97), and the estimator's error on the weights (measured weights in memory) and on the
total (measured peak memory, process RSS).

    python benchmarks/generate.py --runs 5 --tokens 128
Writes benchmarks/results/generate.json and generate.html (+ .png if kaleido is installed).
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

from pairs import PROMPT, alternating, raw_transformers

import llamalab


def raw_run(m, ids, n: int) -> tuple[float, float]:
    t0, t = raw_transformers(m, ids, n)
    return t[0] - t0, (len(t) - 1) / (t[-1] - t[0])


def kit_run(m, n: int) -> tuple[float, float, int]:
    g = m.generate(PROMPT, max_new_tokens=n, min_new_tokens=n)
    assert g.new_tokens == n
    return g.prefill_s, g.decode_tokens_per_s, g.peak_memory_bytes


def bench_scheme(scheme: str, runs: int, n: int) -> dict:
    m = llamalab.load("default", scheme, device="cpu")
    ids = m.engine.encode(PROMPT)
    kit_run(m, 8), raw_run(m, ids, 8)  # warm-up both paths
    kit, raw, peaks = [], [], []

    def one_kit():
        p, d, peak = kit_run(m, n)
        kit.append((p, d))
        peaks.append(peak)

    alternating(runs, one_kit, lambda: raw.append(raw_run(m, ids, n)))
    med = lambda xs: statistics.median(xs)
    est_total = llamalab.estimate("default", scheme, context=len(ids) + n, device="cpu").total_bytes
    row = {
        "scheme": scheme,
        "runs": runs,
        "new_tokens": n,
        "prompt_tokens": len(ids),
        "kit_prefill_ms": 1000 * med([k[0] for k in kit]),
        "raw_prefill_ms": 1000 * med([r[0] for r in raw]),
        "kit_decode_tokens_per_s": med([k[1] for k in kit]),
        "raw_decode_tokens_per_s": med([r[1] for r in raw]),
        "weights_memory_mb": m.weights_memory_bytes / 1e6,
        "estimated_weights_mb": m.estimate.breakdown["weights"] / 1e6,
        "weights_error_pct": m.estimate_error_pct,
        "peak_memory_mb": max(peaks) / 1e6,
        "estimated_total_mb": est_total / 1e6,
        "total_error_pct": 100 * (est_total - max(peaks)) / max(peaks),
    }
    row["decode_ratio_kit_over_raw"] = (
        row["kit_decode_tokens_per_s"] / row["raw_decode_tokens_per_s"]
    )
    row["prefill_ratio_raw_over_kit"] = row["raw_prefill_ms"] / row["kit_prefill_ms"]
    m.unload()
    return row


def _in_fresh_process(fn, *args):
    """One scheme in its own interpreter, so the schemes before it do not inflate its peak RSS."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def figure(rows):
    from plotly.subplots import make_subplots

    names = [r["scheme"] for r in rows]
    fig = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=("decode tokens/s (median)", "prefill ms (median)", "estimate error %"),
    )
    for who, color in (("kit", "#1f77b4"), ("raw", "#aaaaaa")):
        fig.add_bar(
            x=names,
            y=[r[f"{who}_decode_tokens_per_s"] for r in rows],
            name=f"{who} decode",
            marker_color=color,
            row=1,
            col=1,
        )
        fig.add_bar(
            x=names,
            y=[r[f"{who}_prefill_ms"] for r in rows],
            name=f"{who} prefill",
            marker_color=color,
            row=1,
            col=2,
            showlegend=False,
        )
    fig.add_bar(
        x=names,
        y=[r["weights_error_pct"] for r in rows],
        name="estimated vs measured weights",
        row=1,
        col=3,
    )
    fig.add_bar(
        x=names,
        y=[r["total_error_pct"] for r in rows],
        name="estimated total vs peak memory",
        row=1,
        col=3,
    )
    fig.update_layout(
        title="llamalab vs raw transformers on the embedded model (same process, interleaved)",
        barmode="group",
        height=420,
        width=1200,
    )
    return fig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--schemes", nargs="+", default=["fp32", "bf16", "fp16", "int8"])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    a = ap.parse_args()
    rows = [_in_fresh_process(bench_scheme, s, a.runs, a.tokens) for s in a.schemes]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": str(llamalab.hardware()),
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (out / "generate.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    fig = figure(rows)
    fig.write_html(out / "generate.html", include_plotlyjs="cdn")
    try:
        fig.write_image(out / "generate.png")
    except Exception as e:  # kaleido is optional
        print(f"(no PNG: {type(e).__name__})")
    cols = [
        "scheme",
        "kit_decode_tokens_per_s",
        "raw_decode_tokens_per_s",
        "decode_ratio_kit_over_raw",
        "kit_prefill_ms",
        "raw_prefill_ms",
        "prefill_ratio_raw_over_kit",
        "weights_error_pct",
        "total_error_pct",
    ]
    print(" ".join(f"{c:>14.14}" for c in cols))
    for r in rows:
        print(
            " ".join(f"{r[c]:>14.3f}" if isinstance(r[c], float) else f"{r[c]:>14}" for c in cols)
        )


if __name__ == "__main__":
    main()
