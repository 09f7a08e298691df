"""The model-selection grid as a heatmap: models × machines, each cell the scheme chosen (coloured
by its bits: greener keeps more of the model) and the longest context it allows, grey where nothing
fits."""

from __future__ import annotations

import plotly.graph_objects as go

NO_FIT = "does not fit"
# bits → colour: 0 (nothing fits) grey, then pale at 2 bits to deep green at 16 bits and above
SCALE = [
    [0.0, "#e8e8e8"],
    [0.06, "#e8e8e8"],
    [0.125, "#fde8c8"],
    [0.5, "#9fd5a6"],
    [1.0, "#1b7a4a"],
]


def _cell_text(row: dict) -> str:
    if not isinstance(row["scheme"], str):  # None, or NaN once in a DataFrame
        return NO_FIT
    n = int(row["max_context"])
    return f"{row['scheme']}<br>≤ {n // 1024}K" if n >= 1024 else f"{row['scheme']}<br>≤ {n}"


def selection_figure(grid, title: str = "Which scheme fits where", height: int | None = None):
    """Heatmap of `selection_grid(...)` rows (a DataFrame or dicts): one row per model, one column
    per machine, in the grid's order; hover says why (`choose_scheme(...).why`)."""
    rows = grid.to_dict("records") if hasattr(grid, "to_dict") else [dict(r) for r in grid]
    models = list(dict.fromkeys(r["model"] for r in rows))
    machines = list(dict.fromkeys(r["machine"] for r in rows))
    at = {(r["model"], r["machine"]): r for r in rows}
    cells = [[at.get((m, k)) for k in machines] for m in models]
    fig = go.Figure(
        go.Heatmap(
            x=machines,
            y=models,
            z=[[c["bits"] if c else 0 for c in line] for line in cells],
            text=[[_cell_text(c) if c else "" for c in line] for line in cells],
            customdata=[[c["why"] if c else "" for c in line] for line in cells],
            texttemplate="%{text}",
            hovertemplate="%{y} on %{x}<br>%{customdata}<extra></extra>",
            colorscale=SCALE,
            zmin=0,
            zmax=16,
            xgap=2,
            ygap=2,
            colorbar=dict(title="bits", tickvals=[0, 4, 8, 16], ticktext=["none", "4", "8", "16"]),
        )
    )
    fig.update_layout(
        title=title,
        height=height or 120 + 48 * len(models),
        yaxis=dict(autorange="reversed"),
        xaxis=dict(side="top"),
        margin=dict(l=110, r=20, t=90, b=20),
        template="plotly_white",
    )
    return fig
