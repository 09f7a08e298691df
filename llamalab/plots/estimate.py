"""Stacked bars of an estimate's memory breakdown, with a line for each GPU memory size."""

from __future__ import annotations

import plotly.graph_objects as go

GB = 1e9
# Breakdown parts in stacking order (bottom first), with their colours.
PARTS = {
    "weights": "#4C78A8",
    "kv_cache": "#F58518",
    "activations": "#54A24B",
    "overhead": "#B0B0B0",
    "gradients": "#E45756",
    "optimizer": "#9D755D",
    "adapters": "#EECA3B",
    "cpu_slack": "#BAB0AC",
}


def _record(e) -> dict:
    """An Estimate or its `to_dict()` → a dict with `<part>_bytes`,
    `total_bytes` and a bar label."""
    d = e.to_dict() if hasattr(e, "to_dict") else dict(e)
    d.setdefault("label", f"{d.get('model', '')} · {d.get('scheme', '')}".strip(" ·"))
    return d


def gpu_lines(gpus) -> list[tuple[float, str]]:
    """(GB, label) per distinct memory size, as the driver reports it (the label says GB and GiB):
    GPUs with the same memory share one line. A GPU: a catalog name, a GPU or a (name, bytes)."""
    from ..catalog import gpu

    by_size: dict[float, list[str]] = {}
    items = gpus.values() if isinstance(gpus, dict) else gpus
    for g in items:
        g = gpu(g) if isinstance(g, str) else g
        name, size = (g.display, g.memory_bytes) if hasattr(g, "memory_bytes") else g
        by_size.setdefault(round(size / GB, 1), []).append(
            name.replace("NVIDIA ", "").replace("GeForce ", "")
        )
    return [
        (gb, f"{gb:g} GB = {gb * GB / 2**30:.1f} GiB: {', '.join(names)}")
        for gb, names in sorted(by_size.items())
    ]


def add_gpu_lines(fig: go.Figure, gpus, dash: str = "dash") -> None:
    """A labelled horizontal line at each distinct memory size of `gpus` (see gpu_lines)."""
    for gb, label in gpu_lines(gpus):
        fig.add_hline(
            y=gb,
            line_dash=dash,
            line_width=1,
            line_color="#666",
            annotation_text=label,
            annotation_position="top left",
            annotation_font_size=10,
        )


def breakdown_figure(
    estimates, gpus=(), title: str = "Memory needed", height: int = 420
) -> go.Figure:
    """One stacked bar (GB) per estimate; `gpus` (dict/list of GPU or (name, bytes))
    draws dashed lines."""
    records = [_record(e) for e in estimates]
    labels = [r["label"] for r in records]
    fig = go.Figure()
    for part, colour in PARTS.items():
        ys = [r.get(f"{part}_bytes", 0) / GB for r in records]
        fig.add_bar(
            name=part,
            x=labels,
            y=ys,
            marker_color=colour,
            visible=any(ys) or "legendonly",
            hovertemplate=f"{part}: %{{y:.3f}} GB<extra></extra>",
        )
    totals = [r["total_bytes"] / GB for r in records]
    fig.add_scatter(
        name="total",
        x=labels,
        y=totals,
        mode="text",
        text=[f"{t:.2f} GB" for t in totals],
        textposition="top center",
        showlegend=False,
        hoverinfo="skip",
    )
    add_gpu_lines(fig, gpus)
    top = max([*totals, *(gb for gb, _ in gpu_lines(gpus))], default=1.0)
    fig.update_layout(
        title=title,
        barmode="stack",
        height=height,
        yaxis_title="GB (10⁹ bytes)",
        yaxis_range=[0, top * 1.15],
        margin=dict(l=50, r=20, t=40, b=40),
        legend=dict(orientation="h", y=-0.15),
    )
    return fig
