"""A fine-tuning run's curves as one plotly figure: loss and eval loss, learning rate,
tokens/s, memory."""

from __future__ import annotations

from ..core.metrics import label, metric

PANELS = (
    ("loss", "eval_loss"),
    ("learning_rate",),
    ("tokens_per_s",),
    ("rss_bytes", "cuda_allocated_bytes"),
)


def training_figure(history=(), title: str = "Fine-tuning", height: int = 420):
    """Four panels over `step`; `history` is run.history (a DataFrame) or its records."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=[label(p[0]) if p[0] != "loss" else "loss" for p in PANELS],
        vertical_spacing=0.18,
    )
    for i, keys in enumerate(PANELS):
        for key in keys:
            fig.add_trace(
                go.Scatter(
                    x=[],
                    y=[],
                    name=label(key),
                    mode="lines+markers" if key == "eval_loss" else "lines",
                ),
                row=i // 2 + 1,
                col=i % 2 + 1,
            )
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=40, r=10, t=60, b=30),
        legend=dict(orientation="h"),
    )
    apply_history(fig, history)
    return fig


def apply_history(fig, history) -> None:
    """Set every trace's x/y from the history (records or DataFrame); memory shown in MB."""
    records = history.to_dict("records") if hasattr(history, "to_dict") else list(history)
    traces = iter(fig.data)
    for keys in PANELS:
        for key in keys:
            t = next(traces)
            pts = [
                (r["step"], r[key]) for r in records if r.get(key) is not None and r[key] == r[key]
            ]
            scale = metric(key).scale if key.endswith("_bytes") else 1.0
            t.x = [p[0] for p in pts]
            t.y = [p[1] * scale for p in pts]
