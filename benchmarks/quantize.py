"""Quantize the embedded model with the kit's GPTQ and AWQ settings and measure time and quality.

    HF_HUB_OFFLINE=1 python benchmarks/quantize.py [--variants gptq,awq,awq-8x256,awq-nohugepages]

Each variant runs fresh (force=True) in its own subprocess (that is how quantize() works); then the
result is loaded and scored against bf16 on the held-out text (2048 tokens, context 512, stride
512). Writes benchmarks/results/quantize.json and quantize.html. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import llamalab
from llamalab import Reference, divergence

OUT = Path(__file__).parent / "results"
VARIANTS = {  # name → quantize() arguments
    "gptq": dict(scheme="gptq"),
    "gptq-defaults": dict(scheme="gptq", batch_size=1, true_sequential=True),
    "awq": dict(scheme="awq"),
    "awq-8x256": dict(scheme="awq", samples=8),
    "awq-nohugepages": dict(scheme="awq", hugepages=False),
    "awq-8x256-nohugepages": dict(scheme="awq", samples=8, hugepages=False),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", default="gptq,awq")
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--out", default="quantize")
    args = ap.parse_args()
    ref_model = llamalab.load("default", "bf16")
    ref = Reference(ref_model, tokens=args.tokens)
    bf16_bytes = sum(f.stat().st_size for f in Path(ref_model.path).glob("*.safetensors"))
    ref_model.unload()
    rows = [
        {
            "variant": "bf16 (reference)",
            "perplexity": ref.perplexity.value,
            "disk_bytes": bf16_bytes,
        }
    ]
    for name in args.variants.split(","):
        kw = dict(VARIANTS[name])
        t0 = time.perf_counter()
        q = llamalab.quantize("default", kw.pop("scheme"), force=True, **kw)
        wall = time.perf_counter() - t0
        m = q.load()
        d = divergence(m, ref)
        ppl = llamalab.perplexity(m, tokens=args.tokens)
        g = m.generate("What is the capital of France?", max_new_tokens=24)
        m.unload()
        rows.append(
            {
                "variant": name,
                "settings": q.settings,
                "quantize_s": q.quantize_seconds,
                "wall_s": wall,
                "worker_usage": q.usage,
                "hugepages": kw.get("hugepages", True),
                "disk_bytes": q.size_bytes(),
                "perplexity": ppl.value,
                "kl_vs_bf16": d.kl_mean,
                "top1_vs_bf16": d.top1_agreement,
                "answer": g.text,
                "path": q.path,
            }
        )
        rows[-1]["model_sha256"] = _sha(Path(q.path) / "model.safetensors")
        rows[-1]["load_average_after"] = os.getloadavg()
        print(json.dumps(rows[-1], default=str), flush=True)
    ref.close()
    from llamalab.quantization.cache import versions

    record = {
        "machine": platform.processor() or platform.machine(),
        "versions": versions(),
        "quality_text": ref.perplexity.label,
        "rows": rows,
        "note": "wall_s includes the subprocess start, imports, load and save; "
        "quantize_s is gptqmodel's quantize()",
    }
    OUT.mkdir(exist_ok=True)
    (OUT / f"{args.out}.json").write_text(json.dumps(record, indent=2, default=str))
    _plot(rows, args.out)


def _sha(path: Path) -> str:
    """Identical bytes = identical checkpoint (e.g. with and without huge pages)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _plot(rows, name: str) -> None:
    import plotly.graph_objects as go

    q = [r for r in rows if "quantize_s" in r]
    fig = go.Figure(
        go.Scatter(
            x=[r["wall_s"] for r in q],
            y=[r["perplexity"] for r in q],
            mode="markers+text",
            text=[r["variant"] for r in q],
            textposition="top center",
            marker=dict(size=14),
        )
    )
    fig.add_hline(y=rows[0]["perplexity"], line_dash="dot", annotation_text="bf16")
    fig.update_layout(
        title="Quantize time vs perplexity (embedded model, 2 cores)",
        xaxis_title="wall time (s)",
        yaxis_title="perplexity per token (KJV Luke 1–4)",
        template="plotly_white",
    )
    fig.write_html(OUT / f"{name}.html", include_plotlyjs="cdn")


if __name__ == "__main__":
    main()
