"""Bars comparing schemes: time to first token, decode speed, peak memory, and quality columns
(perplexity, KL, top-1 agreement) when the records carry them. Records are sweep rows
(`llamalab.measure.sweep`); axis titles and scales come from `llamalab.metrics`. And a blind
arena's leaderboard: Bradley–Terry scores with their intervals (`llamalab.measure.ratings`)."""

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


def leaderboard_figure(ratings, quality=None, title: str | None = None) -> go.Figure:
    """A blind arena's leaderboard: each contender's Bradley–Terry score as a point with its 95 %
    interval as error bars, best on top, and a line at 1000 (the contenders' average). `ratings`: a
    Ratings (llamalab.bradley_terry) or its records; `quality`: contender → {"perplexity": …,
    "kl_vs_reference": …} shown on hover, so the room sees votes next to measured quality."""
    rows = _records(ratings)[::-1]  # plotly draws the first category at the bottom
    quality = quality or {}
    fig = go.Figure(
        go.Scatter(
            x=[r["bt_score"] for r in rows],
            y=[r["contender"] for r in rows],
            mode="markers",
            marker=dict(size=11),
            error_x=dict(
                type="data",
                symmetric=False,
                array=[r["bt_high"] - r["bt_score"] for r in rows],
                arrayminus=[r["bt_score"] - r["bt_low"] for r in rows],
                thickness=2,
                width=6,
            ),
            hovertext=[_hover(r, quality.get(r["contender"], {})) for r in rows],
            hoverinfo="text",
            showlegend=False,
        )
    )
    fig.add_vline(x=1000, line_dash="dot", line_color="grey")
    votes = sum(r["votes"] for r in rows) // 2
    fig.update_layout(
        title=title or f"Blind votes: {metric('bt_score').label}, 95 % interval ({votes} votes)",
        xaxis_title=metric("bt_score").label,
        height=140 + 50 * len(rows),
        margin=dict(l=40, r=20, t=60, b=50),
    )
    return fig


def _records(ratings) -> list[dict]:
    if hasattr(ratings, "summary"):
        ratings = ratings.summary
    if hasattr(ratings, "to_dict"):
        return ratings.to_dict("records")
    return [dict(r) for r in ratings]


def _hover(row: dict, quality: dict) -> str:
    keys = ("bt_score", "bt_low", "bt_high", "votes", "wins", "ties", "elo", *QUALITY_METRICS)
    values = {**row, **quality}
    parts = [f"<b>{row['contender']}</b>"] + [
        f"{metric(k).label}: {_label(values[k])}" for k in keys if _present(values.get(k))
    ]
    return "<br>".join(parts)
