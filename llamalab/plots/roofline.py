"""The speed law as a picture: decode tokens/s against memory bandwidth, one line per model and
scheme (`llamalab.roofline`'s bytes per token), each GPU's bandwidth marked, measured runs on
top."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from ..core.metrics import label
from ..plan.speed import bandwidth
from .palette import COLOURS

GB = 1e9
DEFAULT_RANGE_GB_S = (10.0, 6000.0)  # a laptop's RAM to an H200
POINTS = 40  # per line: straight on log-log axes, so few are needed; GPU marks are added exactly


def _records(rows) -> list[dict]:
    """A DataFrame or an iterable of dicts → a list of dicts."""
    return rows.to_dict("records") if hasattr(rows, "to_dict") else [dict(r) for r in rows]


def gpu_bandwidths(gpus) -> list[tuple[float, str]]:
    """(GB/s, name) for each of `gpus` (catalog names, GPU objects or 'this'), by the speed law's
    `bandwidth()`: the datasheet for a catalog GPU, measured for this machine's CPU."""
    marks = []
    for g in gpus:
        bw = bandwidth(g)
        if bw:
            name = g.name if hasattr(g, "name") else str(g)
            marks.append((bw[0] / GB, name))
    return sorted(marks)


def _xs(lo: float, hi: float, exact: list[float]) -> list[float]:
    """Log-spaced GB/s from lo to hi, plus the exact bandwidths marked or measured."""
    step = (math.log10(hi) - math.log10(lo)) / (POINTS - 1)
    grid = [10 ** (math.log10(lo) + i * step) for i in range(POINTS)]
    return sorted({*grid, *exact})


def _range(marks: list[float]) -> tuple[float, float]:
    if not marks:
        return DEFAULT_RANGE_GB_S
    return min(min(marks) / 2, DEFAULT_RANGE_GB_S[0]), max(max(marks) * 1.5, 100.0)


def roofline_figure(
    rooflines,
    measured=(),
    gpus=(),
    title: str = "Decode speed is set by memory bandwidth",
    height: int = 460,
) -> go.Figure:
    """Log-log lines tokens/s = bandwidth ÷ bytes per token for each `roofline()` result in
    `rooflines`; dashed verticals at each of `gpus`' bandwidth; `measured` records (`label`,
    `bandwidth_bytes_s`, `decode_tokens_per_s`, and optionally `weights_memory_bytes`, whose own
    ceiling is then drawn dotted) as points: how far below its ceiling a real run decodes."""
    lines, points = _records(rooflines), _records(measured)
    marks = gpu_bandwidths(gpus)
    at = [gb for gb, _ in marks] + [p["bandwidth_bytes_s"] / GB for p in points]
    xs = _xs(*_range(at), at)
    fig = go.Figure()
    for i, r in enumerate(lines):
        per_token = r["bytes_per_step"]
        fig.add_scatter(
            x=xs,
            y=[x * GB / per_token for x in xs],
            mode="lines",
            name=f"{r['model']} · {r['scheme']} ({per_token / GB:.2f} GB/token)",
            line_color=COLOURS[i % len(COLOURS)],
            hovertemplate="%{x:.0f} GB/s → %{y:.1f} tokens/s<extra></extra>",
        )
    for i, p in enumerate(points):
        _measured_point(fig, p, xs, COLOURS[(len(lines) + i) % len(COLOURS)])
    for gb, name in marks:
        _mark(fig, gb, name)
    fig.update_layout(
        title=title,
        height=height,
        xaxis=dict(type="log", title=label("bandwidth_bytes_s")),
        yaxis=dict(type="log", title=f"{label('decode_tokens_per_s')} (one sequence)"),
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(orientation="h", y=-0.2),
        template="plotly_white",
    )
    return fig


def _measured_point(fig: go.Figure, p: dict, xs: list[float], colour: str) -> None:
    """One measured run as a marker, and its model's ceiling (dotted) when its bytes are given."""
    name = str(p.get("label") or p.get("model") or "measured")
    x, y = p["bandwidth_bytes_s"] / GB, p["decode_tokens_per_s"]
    if p.get("weights_memory_bytes"):
        per_token = p["weights_memory_bytes"]
        fig.add_scatter(
            x=xs,
            y=[v * GB / per_token for v in xs],
            mode="lines",
            line=dict(color=colour, dash="dot", width=1),
            name=f"ceiling of {name} ({per_token / GB:.2f} GB/token)",
            hoverinfo="skip",
        )
        share = f"<br>{y / (x * GB / per_token):.0%} of its ceiling"
    else:
        share = ""
    fig.add_scatter(
        x=[x],
        y=[y],
        mode="markers",
        marker=dict(size=11, color=colour, symbol="diamond", line=dict(width=1, color="#222")),
        name=f"measured: {name}",
        hovertemplate=f"{x:.1f} GB/s, {y:.2f} tokens/s{share}<extra>{name}</extra>",
    )


def _mark(fig: go.Figure, gb: float, name: str) -> None:
    """A dashed vertical at a GPU's bandwidth, named at the top. On a log axis plotly places
    shapes by value but annotations by the value's exponent."""
    fig.add_shape(
        type="line",
        x0=gb,
        x1=gb,
        yref="paper",
        y0=0,
        y1=1,
        line=dict(dash="dash", width=1, color="#888"),
    )
    fig.add_annotation(
        x=math.log10(gb),
        yref="paper",
        y=1,
        text=name,
        textangle=-90,
        xanchor="right",
        yanchor="top",
        showarrow=False,
        font_size=10,
    )
