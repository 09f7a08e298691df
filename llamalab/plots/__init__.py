"""Plotly figure builders from tidy records (lists of dicts or DataFrames), returning `go.Figure`.

The same builder serves a static figure in a notebook and a live `go.FigureWidget(fig)` in a widget.
No ipywidgets here: `resync` only touches plotly's own widget attributes.
"""

from __future__ import annotations

from copy import deepcopy

from .arena import ARENA_METRICS, QUALITY_METRICS, arena_figure, leaderboard_figure
from .cost import cost_figure, cost_per_mtok_figure
from .estimate import PARTS, breakdown_figure, gpu_lines
from .kv import kv_by_context, kv_figure
from .loadtest import latency_throughput_figure
from .monitor import apply_samples, monitor_figure
from .roofline import roofline_figure
from .room import room_roofline_figure, with_roofline
from .selection import selection_figure
from .tokens import token_colour, tokens_html

__all__ = [
    "ARENA_METRICS",
    "PARTS",
    "QUALITY_METRICS",
    "apply_samples",
    "arena_figure",
    "breakdown_figure",
    "cost_figure",
    "cost_per_mtok_figure",
    "gpu_lines",
    "kv_by_context",
    "kv_figure",
    "latency_throughput_figure",
    "leaderboard_figure",
    "monitor_figure",
    "resync",
    "roofline_figure",
    "room_roofline_figure",
    "selection_figure",
    "token_colour",
    "tokens_html",
    "update_figure",
    "with_roofline",
]


def update_figure(target, source) -> None:
    """Make `target` (a live FigureWidget) show `source` (a freshly built go.Figure) with few
    messages: traces are restyled in place when the trace types match, replaced otherwise; the
    layout is replaced. Ends with `resync`, so views opened later (reload, Voilà) show the same
    figure."""
    same = [t.type for t in target.data] == [t.type for t in source.data]
    if not same:
        target.data = []
        target.add_traces(source.data)
    with target.batch_update():
        if same:
            for old, new in zip(target.data, source.data):
                old.update(new.to_plotly_json(), overwrite=True)
        target.layout = source.layout
    resync(target)


def resync(fig) -> None:
    """Push a FigureWidget's full current state to its widget model (pitfall P1
    in the design notes).

    plotly (6–7.x) syncs `_widget_data`/`_widget_layout` only at construction and on direct display;
    later edits travel as one-shot deltas, so a browser reload, a Voilà page or saved widget state
    would show the figure as first built. Call this when the work ends. A plain `go.Figure` is
    ignored. These are private plotly attributes (checked against plotly 6.x and 7.1): test_plots.py
    pins them.
    """
    if not hasattr(fig, "_widget_data"):
        return
    fig._widget_layout = deepcopy(fig._layout_obj._props)
    fig._widget_data = deepcopy(fig._data)
