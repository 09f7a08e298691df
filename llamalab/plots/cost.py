"""Open vs closed: monthly cost curves of `llamalab.cost_at_scale` and the break-even volume."""

from __future__ import annotations

import plotly.graph_objects as go


def cost_figure(r) -> go.Figure:
    """Monthly cost vs monthly tokens, log-log, with the break-even volume marked."""
    fig = go.Figure()
    fig.add_scatter(x=r.tokens_per_month, y=r.api_usd, name=f"API: {r.api}", mode="lines")
    fig.add_scatter(
        x=r.tokens_per_month,
        y=r.self_hosted_usd,
        name=f"self-hosted: {r.gpus_per_replica}× {r.gpu} per replica",
        mode="lines",
        line_shape="hv",
    )
    if r.break_even_tokens_per_month:
        fig.add_vline(
            x=r.break_even_tokens_per_month, line_dash="dash", annotation_text="break-even"
        )
    fig.update_layout(
        title=f"{r.model} · {r.scheme}: cost per month",
        xaxis_type="log",
        yaxis_type="log",
        xaxis_title="tokens per month",
        yaxis_title="US$ per month",
        height=380,
        margin=dict(l=60, r=20, t=50, b=50),
    )
    return fig
