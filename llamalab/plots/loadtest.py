"""Latency against throughput from a load test's summary: one point per level (concurrency or
rate), so the knee shows where more load stops buying throughput and starts costing latency."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from ..core.metrics import label, metric
from ..core.validate import choice
from ..measure.loadtest import PERCENTILES

LATENCIES = ("ttft", "tpot", "e2e", "itl")
DASHES = {50: "solid", 90: "dash", 99: "dot"}


def _level(row) -> str:
    """'c=4' for a concurrency level, '2 req/s' for a rate."""
    c = row.get("concurrency")
    if c is not None and c == c:
        return f"c={int(c)}" if float(c).is_integer() else f"c={c}"
    return f"{row['rate']:g} req/s"


def latency_throughput_figure(
    summary,
    latency: str = "ttft",
    percentiles=(50, 90),
    slo_s: float | None = None,
    title: str | None = None,
    height: int = 440,
) -> go.Figure:
    """x: output tokens/s of each level; y: its `latency` (ttft, tpot, e2e or itl) at each of
    `percentiles`, one line per percentile through the levels in load order, each point labelled
    with its level. `summary`: `load_test(...).summary` (or its rows); `slo_s`: a dotted line at
    that latency. Levels with no completed request (NaN) are left out."""
    choice("latency", latency, LATENCIES)
    for p in percentiles:
        choice("percentiles", p, PERCENTILES)
    rows = summary.to_dict("records") if hasattr(summary, "to_dict") else [dict(r) for r in summary]
    rows = sorted(rows, key=_load)
    m = metric(f"{latency}_s")
    fig = go.Figure()
    for i, p in enumerate(percentiles):
        key = f"{latency}_p{p}_s"
        done = [r for r in rows if _finite(r.get(key)) and _finite(r.get("output_throughput"))]
        fig.add_scatter(
            x=[r["output_throughput"] for r in done],
            y=[m.show(r[key]) for r in done],
            mode="lines+markers+text" if i == 0 else "lines+markers",  # one label per level
            text=[_level(r) for r in done],
            textposition="top left",
            line=dict(dash=DASHES.get(p, "solid"), color="#4C78A8"),
            name=f"p{p}",
            hovertemplate="%{text}: %{x:.1f} tokens/s, %{y:.3g}<extra>p" + str(p) + "</extra>",
        )
    if slo_s is not None:
        fig.add_hline(y=m.show(slo_s), line_dash="dot", line_color="#d62728", annotation_text="SLO")
    fig.update_layout(
        title=title or f"{m.label.split(' (')[0]} vs throughput, by load",
        height=height,
        xaxis=dict(title=label("output_throughput"), rangemode="tozero"),
        yaxis=dict(title=m.label, rangemode="tozero"),
        margin=dict(l=60, r=20, t=50, b=50),
        template="plotly_white",
    )
    return fig


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _load(row) -> float:
    """A level's load, for ordering: its concurrency, else its rate."""
    c = row.get("concurrency")
    return c if _finite(c) else row.get("rate", 0.0)
