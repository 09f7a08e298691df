"""Open vs closed: the cost curves of `llamalab.cost_at_scale` — self-hosted, the closed API and
the same open model hosted — per month and per million tokens, with where each is cheapest."""

from __future__ import annotations

import math

import plotly.graph_objects as go

COLOURS = {"self-hosted": "#1f77b4", "api": "#d62728", "hosted": "#2ca02c"}
SHADES = {"self-hosted": "rgba(31,119,180,0.08)", "api": "rgba(214,39,40,0.08)"}
SHADES["hosted"] = "rgba(44,160,44,0.08)"


def _lines(r, df, y: str) -> go.Figure:
    """One line per option of `r` (self-hosted, API, hosted) from its curves' column `y`."""
    fig = go.Figure()
    for option in r.options:
        part = df[df.option == option]
        fig.add_scatter(
            x=part.tokens_per_month,
            y=part[y],
            name=r.label(option),
            mode="lines",
            line_color=COLOURS[option],
        )
    return fig


def cost_figure(r) -> go.Figure:
    """Monthly cost vs monthly tokens, log-log: each option's bill (self-hosted in replica steps),
    the break-even with the API marked only where it holds for every volume above it."""
    df = r.curves()
    fig = _lines(r, df, "usd_per_month")
    if r.break_even_tokens_per_month:
        fig.add_vline(
            x=r.break_even_tokens_per_month,
            line_dash="dash",
            annotation_text=f"break-even with {r.api}",
        )
    fig.update_layout(
        title=f"{r.model} · {r.scheme}: cost per month",
        xaxis_type="log",
        yaxis_type="log",
        xaxis_title="tokens per month",
        yaxis_title="US$ per month",
        height=380,
        margin=dict(l=60, r=20, t=50, b=50),
    )
    return fig


def cost_per_mtok_figure(r, low: float | None = None, high: float | None = None) -> go.Figure:
    """The sensitivity plot: US$ per million tokens vs monthly volume (log x) for the three options.
    A per-token price is a flat line; self-hosting falls as a replica fills and jumps up at each
    new replica (the sawtooth). The background is shaded by the cheapest option (`r.ranges`)."""
    df = r.curves(low, high)
    fig = _lines(r, df, "usd_per_mtok")
    lo, hi = df.tokens_per_month.min(), df.tokens_per_month.max()
    for rg in r.ranges:
        start, end = max(rg.start, lo), min(rg.end, hi)
        if end > start:
            fig.add_vrect(
                x0=start, x1=end, fillcolor=SHADES[rg.option], line_width=0, layer="below"
            )
    fig.update_layout(
        title=f"{r.model} · {r.scheme}: cost per million tokens (shaded: cheapest)",
        xaxis_type="log",
        yaxis_type="log",
        xaxis_title="tokens per month",
        yaxis_title="US$ per million tokens",
        xaxis_range=[math.log10(lo), math.log10(hi)],
        height=400,
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig
