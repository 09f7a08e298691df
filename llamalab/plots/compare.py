"""Figures for scheme comparisons (tidy DataFrames from llamalab.compare) and live monitor traces.
Builders return plotly `go.Figure`; wrap one in `go.FigureWidget` for live updates in a notebook."""
from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

MB = 1e6
METRICS = {   # column → (axis title, scale)
    "weights_disk_bytes": ("weights on disk (MB)", MB),
    "weights_memory_bytes": ("weights in memory (MB)", MB),
    "peak_rss_bytes": ("peak process RSS while generating (MB)", MB),
    "decode_tok_s": ("decode speed (tokens/s)", 1),
    "ttft_s": ("time to first token (s)", 1),
    "perplexity": ("perplexity per token (held-out text)", 1),
    "kl_vs_reference": ("KL vs reference (nats/token)", 1),
    "top1_vs_reference": ("top-1 agreement with reference", 1),
}


def _summary(df):
    from ..measure.compare import summary
    s = summary(df)
    return s[s["error"].isna()] if "error" in s else s


def bars(df, metric: str = "decode_tok_s", title: str | None = None) -> go.Figure:
    """One bar per scheme (median over prompts and runs)."""
    label, scale = METRICS.get(metric, (metric, 1))
    s = _summary(df)
    fig = go.Figure(go.Bar(x=s["scheme"], y=s[metric] / scale, marker_color=_colors(s),
                           text=[f"{v / scale:.3g}" for v in s[metric]], textposition="outside"))
    fig.update_layout(title=title or label, yaxis_title=label, xaxis_title="scheme", template="plotly_white",
                      height=380)
    return fig


def overview(df, metrics=("weights_memory_bytes", "decode_tok_s", "perplexity", "kl_vs_reference")) -> go.Figure:
    """A grid of bar panels, one per metric, schemes on the x axis."""
    s = _summary(df)
    cols = 2
    rows = (len(metrics) + 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[METRICS.get(m, (m, 1))[0] for m in metrics])
    for i, m in enumerate(metrics):
        _, scale = METRICS.get(m, (m, 1))
        fig.add_trace(go.Bar(x=s["scheme"], y=s[m] / scale, marker_color=_colors(s), showlegend=False),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_layout(height=330 * rows, template="plotly_white", title="Schemes compared (medians)")
    return fig


def tradeoff(df, x: str = "weights_memory_bytes", y: str = "decode_tok_s", color: str = "perplexity") -> go.Figure:
    """The size–speed–quality scatter: x = size, y = speed, colour = quality; one labelled point per scheme."""
    s = _summary(df)
    (xl, xs), (yl, ys), (cl, _) = METRICS[x], METRICS[y], METRICS[color]
    fig = go.Figure(go.Scatter(
        x=s[x] / xs, y=s[y] / ys, mode="markers+text", text=s["scheme"], textposition="top center",
        marker=dict(size=16, color=s[color], colorscale="Viridis_r", showscale=True, colorbar=dict(title=cl)),
        customdata=s[[color]].to_numpy(), hovertemplate=f"%{{text}}<br>{xl}: %{{x:.1f}}<br>{yl}: %{{y:.1f}}"
                                                       f"<br>{cl}: %{{customdata[0]:.4g}}<extra></extra>"))
    fig.update_layout(title="Size, speed and quality per scheme", xaxis_title=xl, yaxis_title=yl,
                      template="plotly_white", height=450)
    return fig


def _colors(s) -> list[str]:
    palette = {"transformers": "#4c78a8", "llama.cpp": "#f58518"}
    return [palette.get(e, "#999999") for e in s.get("engine", [""] * len(s))]


def live_figure(title: str = "Memory and speed while it runs") -> go.Figure:
    """Two traces fed by llamalab.Monitor samples: process RSS (MB) and tokens/s."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=[], y=[], name="process RSS (MB)", line=dict(color="#4c78a8")), secondary_y=False)
    fig.add_trace(go.Scatter(x=[], y=[], name="tokens/s", line=dict(color="#f58518")), secondary_y=True)
    fig.update_layout(title=title, xaxis_title="time (s)", template="plotly_white", height=320)
    fig.update_yaxes(title_text="RSS (MB)", secondary_y=False)
    fig.update_yaxes(title_text="tokens/s", secondary_y=True)
    return fig


def live_update(fig, samples) -> None:
    """Replace the live traces with `samples` (a list of Sample); batched on a FigureWidget."""
    t = [s.t for s in samples]
    rss = [s.rss_bytes / MB for s in samples]
    tps = [s.tokens_per_s for s in samples]
    batch = fig.batch_update() if hasattr(fig, "batch_update") else _null()
    with batch:
        fig.data[0].x, fig.data[0].y = t, rss
        fig.data[1].x, fig.data[1].y = t, tps


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
