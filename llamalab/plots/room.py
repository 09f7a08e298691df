"""The room's roofline: every learner's machine as a point — its measured memory bandwidth against
the decode speed it measured — under the line tokens/s = bandwidth ÷ bytes read per token for each
model and scheme (`plan.speed.bytes_per_step`): does the room's decode speed follow bandwidth?"""

from __future__ import annotations

import plotly.graph_objects as go

from ..core.errors import LlamalabError
from ..core.metrics import label
from ..plan.speed import bytes_per_step
from .palette import COLOURS

GB = 1e9


def _frame(records):
    import pandas as pd

    return records.copy() if hasattr(records, "columns") else pd.DataFrame(list(records))


def _per_token(model, scheme, context) -> float | None:
    """Bytes one decode step reads for this model and scheme (None: not in the catalog)."""
    try:
        return float(bytes_per_step(str(model), str(scheme), int(context)))
    except (LlamalabError, TypeError, ValueError):
        return None


def with_roofline(records):
    """`records` (room results) with `bytes_per_token` (the model and scheme's bytes per decode
    step at the record's prompt + new tokens), `roofline_tokens_per_s` (bandwidth ÷ that) and
    `roofline_share` (measured ÷ roofline); NaN where the catalog or the bandwidth is missing."""
    df = _frame(records)
    for col in ("model", "scheme", "bandwidth_bytes_s", "prompt_tokens", "new_tokens"):
        if col not in df.columns:
            df[col] = None
    context = df["prompt_tokens"].fillna(0).astype(float) + df["new_tokens"].fillna(0).astype(float)
    df["bytes_per_token"] = [
        _per_token(m, s, max(1, c)) for m, s, c in zip(df["model"], df["scheme"], context)
    ]
    df["bytes_per_token"] = df["bytes_per_token"].astype(float)
    df["roofline_tokens_per_s"] = df["bandwidth_bytes_s"].astype(float) / df["bytes_per_token"]
    df["roofline_share"] = df["decode_tokens_per_s"].astype(float) / df["roofline_tokens_per_s"]
    return df


def room_roofline_figure(records, title: str = "The room's machines on the roofline",
                         height: int = 480) -> go.Figure:  # fmt: skip
    """One point per learner (x: their measured bandwidth, GB/s; y: their decode tokens/s), one
    colour per model and scheme, its roofline drawn as a line from the origin, and the room's
    median decode speed dotted. Records without a bandwidth cannot be placed and are counted in
    the title; give it room_table() rows (workshop.latest_local keeps each learner's latest)."""
    df = with_roofline(records)
    placed = df[df["bandwidth_bytes_s"].notna()] if len(df) else df
    fig = go.Figure()
    x_max = float(placed["bandwidth_bytes_s"].max()) / GB * 1.15 if len(placed) else 50.0
    for i, ((model, scheme), group) in enumerate(placed.groupby(["model", "scheme"], dropna=False)):
        colour = COLOURS[i % len(COLOURS)]
        per_token = group["bytes_per_token"].median()
        if per_token == per_token:  # not NaN: the catalog knows this model and scheme
            fig.add_scatter(
                x=[0.0, x_max], y=[0.0, x_max * GB / per_token], mode="lines",
                line=dict(color=colour, width=1.5),
                name=f"roofline {model} · {scheme} ({per_token / 1e6:.0f} MB/token)",
                hovertemplate="%{x:.1f} GB/s → at most %{y:.0f} tokens/s<extra></extra>",
            )  # fmt: skip
        fig.add_scatter(
            x=group["bandwidth_bytes_s"] / GB, y=group["decode_tokens_per_s"],
            mode="markers+text", text=group["name"], textposition="top center",
            marker=dict(size=11, color=colour, line=dict(width=1, color="#222")),
            name=f"{model} · {scheme}", customdata=group["roofline_share"].fillna(-1),
            hovertemplate="%{text}: %{x:.1f} GB/s, %{y:.1f} tokens/s, "
            "%{customdata:.0%} of its roofline<extra></extra>",
        )  # fmt: skip
    if len(placed):
        median = float(placed["decode_tokens_per_s"].median())
        fig.add_hline(y=median, line_dash="dot", line_color="#888",
                      annotation_text=f"room median {median:.1f} tokens/s")  # fmt: skip
    missing = len(df) - len(placed)
    note = f" ({missing} without a measured bandwidth, not placed)" if missing else ""
    fig.update_layout(
        title=title + note,
        height=height,
        xaxis=dict(title=label("bandwidth_bytes_s"), rangemode="tozero"),
        yaxis=dict(title=label("decode_tokens_per_s"), rangemode="tozero"),
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(orientation="h", y=-0.2),
        template="plotly_white",
    )
    return fig
