"""Figures for scheme comparisons (tidy DataFrames from llamalab.compare): one bar per scheme, a
grid of panels, and the size–speed–quality scatter. Axis titles and scales come from
`llamalab.metrics`."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..core.metrics import label, metric
from ..measure.sweep import summarize


def _scale(key: str) -> float:
    try:
        return metric(key).scale
    except KeyError:
        return 1.0


def _summary(df):
    s = summarize(df)
    return s[s["error"].isna()] if "error" in s else s


def bars(df, key: str = "decode_tokens_per_s", title: str | None = None) -> go.Figure:
    """One bar per scheme (median over prompts and runs)."""
    s, scale, name = _summary(df), _scale(key), label(key)
    fig = go.Figure(
        go.Bar(
            x=s["scheme"],
            y=s[key] * scale,
            marker_color=_colors(s),
            text=[f"{v * scale:.3g}" for v in s[key]],
            textposition="outside",
        )
    )
    fig.update_layout(
        title=title or name,
        yaxis_title=name,
        xaxis_title="scheme",
        template="plotly_white",
        height=380,
    )
    return fig


def overview(
    df, keys=("weights_memory_bytes", "decode_tokens_per_s", "perplexity", "kl_vs_reference")
) -> go.Figure:
    """A grid of bar panels, one per metric, schemes on the x axis."""
    s = _summary(df)
    cols = 2
    rows = (len(keys) + 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[label(k) for k in keys])
    for i, k in enumerate(keys):
        fig.add_trace(
            go.Bar(x=s["scheme"], y=s[k] * _scale(k), marker_color=_colors(s), showlegend=False),
            row=i // cols + 1,
            col=i % cols + 1,
        )
    fig.update_layout(
        height=330 * rows, template="plotly_white", title="Schemes compared (medians)"
    )
    return fig


def tradeoff(
    df, x: str = "weights_memory_bytes", y: str = "decode_tokens_per_s", color: str = "perplexity"
) -> go.Figure:
    """The size–speed–quality scatter: x = size, y = speed, colour = quality;
    one labelled point per scheme."""
    s = _summary(df)
    xl, yl, cl = label(x), label(y), label(color)
    fig = go.Figure(
        go.Scatter(
            x=s[x] * _scale(x),
            y=s[y] * _scale(y),
            mode="markers+text",
            text=s["scheme"],
            textposition="top center",
            marker=dict(
                size=16,
                color=s[color],
                colorscale="Viridis_r",
                showscale=True,
                colorbar=dict(title=cl),
            ),
            customdata=s[[color]].to_numpy(),
            hovertemplate=f"%{{text}}<br>{xl}: %{{x:.1f}}<br>{yl}: %{{y:.1f}}"
            f"<br>{cl}: %{{customdata[0]:.4g}}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Size, speed and quality per scheme",
        xaxis_title=xl,
        yaxis_title=yl,
        template="plotly_white",
        height=450,
    )
    return fig


def _colors(s) -> list[str]:
    palette = {"transformers": "#4c78a8", "llama.cpp": "#f58518"}
    return [palette.get(e, "#999999") for e in s.get("engine", [""] * len(s))]
