"""Bars comparing schemes of one model: time to first token, decode speed, peak memory, and quality
columns (perplexity, KL, top-1 agreement) when the records carry them."""
from __future__ import annotations

import statistics

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# (record key, axis title, scale applied to the value)
ARENA_METRICS = (("ttft_s", "TTFT (ms)", 1e3), ("decode_tokens_per_s", "decode tokens/s", 1.0),
                 ("peak_memory_bytes", "peak memory (MB)", 1e-6))
# Same column names as llamalab.measure.compare, so records from either place plot alike.
QUALITY_METRICS = (("perplexity", "perplexity per token", 1.0), ("kl_vs_reference", "KL vs reference (nats)", 1.0),
                   ("top1_vs_reference", "top-1 agreement", 1.0))


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


def _label(y) -> str:
    if y is None:
        return ""
    return f"{y:,.0f}" if abs(y) >= 100 else f"{y:.3g}"


def arena_figure(records, title: str = "Schemes side by side", height: int = 300) -> go.Figure:
    """One bar chart per metric, one bar per scheme, three panels a row; quality metrics get panels only
    when the records carry them. Peak memory says what it counts (e.g. process RSS) in a footnote."""
    summary = arena_summary(records)
    metrics = [m for m in (*ARENA_METRICS, *QUALITY_METRICS)
               if m in ARENA_METRICS or any(m[0] in r for r in summary)]
    rows = -(-len(metrics) // 3)
    fig = make_subplots(rows=rows, cols=3, subplot_titles=[t for _, t, _ in metrics],
                        horizontal_spacing=0.1, vertical_spacing=0.3 / rows)
    schemes = [r["scheme"] for r in summary]
    for i, (key, label, scale) in enumerate(metrics):
        ys = [r[key] * scale if key in r else None for r in summary]
        fig.add_bar(x=schemes, y=ys, name=label, showlegend=False, row=i // 3 + 1, col=i % 3 + 1, textangle=0,
                    text=[_label(y) for y in ys], textposition="auto")
    kinds = sorted({r["peak_memory_kind"] for r in _rows(records) if r.get("peak_memory_kind")})
    if kinds:
        fig.add_annotation(text=f"peak memory: {', '.join(kinds)}", xref="paper", yref="paper", x=0, y=0,
                           yshift=-42, showarrow=False, font_size=10, xanchor="left", yanchor="top")
    fig.update_layout(title=title, height=height * rows, margin=dict(l=40, r=20, t=70, b=60))
    return fig
