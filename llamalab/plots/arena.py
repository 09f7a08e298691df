"""Bars comparing schemes: time to first token, decode speed, peak memory, and quality columns
(perplexity, KL, top-1 agreement) when the records carry them. Records are sweep rows
(`llamalab.measure.sweep`); axis titles and scales come from `llamalab.metrics`."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.metrics import metric
from ..measure.sweep import summarize

ARENA_METRICS = ("ttft_s", "decode_tokens_per_s", "peak_memory_bytes")
QUALITY_METRICS = ("perplexity", "kl_vs_reference", "top1_vs_reference")


def _label(y) -> str:
    if y is None:
        return ""
    return f"{y:,.0f}" if abs(y) >= 100 else f"{y:.3g}"


def _value(v, scale: float):
    return None if v is None or v != v else v * scale  # NaN (not measured) → no bar


def arena_figure(records, title: str = "Schemes side by side", height: int = 300) -> go.Figure:
    """One bar chart per metric, one bar per scheme (median of its rows), three panels a row;
    quality metrics get panels only when the records carry them. Failed schemes are left out. Peak
    memory says what it counts (e.g. process RSS) in a footnote."""
    rows = [r for r in summarize(records).to_dict("records") if not _present(r.get("error"))]
    keys = [
        k
        for k in (*ARENA_METRICS, *QUALITY_METRICS)
        if k in ARENA_METRICS or any(_present(r.get(k)) for r in rows)
    ]
    n_rows = -(-len(keys) // 3)
    fig = make_subplots(
        rows=n_rows,
        cols=3,
        subplot_titles=[metric(k).label for k in keys],
        horizontal_spacing=0.1,
        vertical_spacing=0.3 / n_rows,
    )
    schemes = [r["scheme"] for r in rows]
    for i, key in enumerate(keys):
        m = metric(key)
        ys = [_value(r.get(key), m.scale) for r in rows]
        fig.add_bar(
            x=schemes,
            y=ys,
            name=m.label,
            showlegend=False,
            row=i // 3 + 1,
            col=i % 3 + 1,
            textangle=0,
            text=[_label(y) for y in ys],
            textposition="auto",
        )
    kinds = sorted({r["peak_memory_kind"] for r in rows if _present(r.get("peak_memory_kind"))})
    if kinds:
        fig.add_annotation(
            text=f"peak memory: {', '.join(kinds)}",
            xref="paper",
            yref="paper",
            x=0,
            y=0,
            yshift=-42,
            showarrow=False,
            font_size=10,
            xanchor="left",
            yanchor="top",
        )
    fig.update_layout(title=title, height=height * n_rows, margin=dict(l=40, r=20, t=70, b=60))
    return fig


def _present(v) -> bool:
    return v is not None and v == v
