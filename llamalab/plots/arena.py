"""Bars comparing schemes of one model: time to first token, decode speed, peak memory, and quality
columns (perplexity, KL, top-1 agreement) when the records carry them."""
from __future__ import annotations

import statistics

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# (record key, axis title, scale applied to the value)
ARENA_METRICS = (("ttft_s", "TTFT (ms)", 1e3), ("decode_tokens_per_s", "decode tokens/s", 1.0),
                 ("peak_memory_bytes", "peak memory (MB)", 1e-6))
QUALITY_METRICS = (("perplexity", "perplexity", 1.0), ("kl_divergence", "KL vs reference", 1.0),
                   ("top1_agreement", "top-1 agreement", 1.0))


def _rows(records) -> list[dict]:
    if hasattr(records, "to_dict") and hasattr(records, "columns"):
        return records.to_dict("records")
    return [dict(r) for r in records]


def arena_summary(records) -> list[dict]:
    """One row per scheme (first-seen order): medians over its prompts; failed runs are skipped."""
    by_scheme: dict[str, list[dict]] = {}
    for r in _rows(records):
        if not r.get("error"):
            by_scheme.setdefault(r["scheme"], []).append(r)
    out = []
    for scheme, rows in by_scheme.items():
        row = {"scheme": scheme, "runs": len(rows)}
        for key, _, _ in (*ARENA_METRICS, *QUALITY_METRICS):
            vals = [r[key] for r in rows if r.get(key) is not None]
            if vals:
                row[key] = statistics.median(vals)
        out.append(row)
    return out


def arena_figure(records, title: str = "Schemes side by side", height: int = 320) -> go.Figure:
    """One bar chart per metric, one bar per scheme; quality metrics get a panel only when present."""
    summary = arena_summary(records)
    metrics = [m for m in (*ARENA_METRICS, *QUALITY_METRICS)
               if m in ARENA_METRICS or any(m[0] in r for r in summary)]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[t for _, t, _ in metrics],
                        horizontal_spacing=0.08)
    schemes = [r["scheme"] for r in summary]
    for i, (key, label, scale) in enumerate(metrics, start=1):
        ys = [r[key] * scale if key in r else None for r in summary]
        fig.add_bar(x=schemes, y=ys, name=label, showlegend=False, row=1, col=i,
                    text=[f"{y:.3g}" if y is not None else "" for y in ys], textposition="auto")
    fig.update_layout(title=title, height=height, margin=dict(l=40, r=20, t=70, b=40))
    return fig
