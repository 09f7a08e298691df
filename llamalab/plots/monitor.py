"""Memory and tokens/s over time, from `Sample` records (`llamalab.Monitor().to_records()`)."""

from __future__ import annotations

import plotly.graph_objects as go

from ..core.metrics import metric

# (record key, y axis, always shown); trace names and scales from llamalab.metrics
SERIES = (
    ("rss_bytes", "y", True),
    ("cuda_allocated_bytes", "y", False),
    ("cuda_reserved_bytes", "y", False),
    ("tokens_per_s", "y2", True),
)


def _name(key: str) -> str:
    """The metric's label without its unit: the axis title carries the unit."""
    return metric(key).label.removesuffix(" (MB)")


def monitor_figure(records=(), title: str = "Memory and speed", height: int = 320) -> go.Figure:
    """Lines of process RSS (and CUDA allocated/reserved when non-zero) in MB,
    tokens/s on the right axis."""
    fig = go.Figure()
    for key, axis, _ in SERIES:
        fig.add_scatter(
            name=_name(key),
            x=[],
            y=[],
            yaxis=axis,
            mode="lines+markers",
            marker_size=4,
            connectgaps=False,
            line_dash="dot" if axis == "y2" else "solid",
        )
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=50, r=60, t=40, b=40),
        xaxis_title="time (s)",
        yaxis=dict(title="memory (MB)", rangemode="tozero"),
        yaxis2=dict(
            title=metric("tokens_per_s").label,
            overlaying="y",
            side="right",
            rangemode="tozero",
            showgrid=False,
        ),
        legend=dict(orientation="h", y=-0.25),
        uirevision="monitor",
    )
    apply_samples(fig, records)
    return fig


def series(records) -> dict[str, tuple[list, list]]:
    """x and y per record key; runs (the `run` key) are separated by a gap so lines
    do not join them."""
    rows = _rows(records)
    out = {key: ([], []) for key, *_ in SERIES}
    last_run = None
    for r in rows:
        run = r.get("run", 0)
        for key, _, _ in SERIES:
            xs, ys = out[key]
            if last_run is not None and run != last_run:
                xs.append(None)
                ys.append(None)
            xs.append(round(r["t"], 3))
            ys.append(
                metric(key).show(r.get(key, 0))
                if key.endswith("_bytes")
                else round(r.get(key, 0.0), 2)
            )
        last_run = run
    return out


def apply_samples(fig, records) -> None:
    """Set every trace's data from `records`; works on go.Figure and,
    inside `batch_update`, FigureWidget."""
    rows = _rows(records)
    data = series(rows)
    cuda = any(r.get("cuda_reserved_bytes", 0) or r.get("cuda_allocated_bytes", 0) for r in rows)
    for trace, (key, _, always) in zip(fig.data, SERIES):
        trace.x, trace.y = data[key]
        trace.visible = bool(always or cuda)


def _rows(records) -> list[dict]:
    if hasattr(records, "to_dict") and hasattr(records, "columns"):  # a DataFrame
        return records.to_dict("records")
    return [r if isinstance(r, dict) else r.to_dict() for r in records]
