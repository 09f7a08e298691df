"""KV cache against context length, from the estimator: each model as it is (grouped-query
attention) and as if every attention head kept its own keys and values (multi-head), with GPU
memory lines."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import plotly.graph_objects as go

from ..catalog import card
from ..plan.estimator import estimate
from .estimate import add_gpu_lines
from .palette import COLOURS

GB = 1e9
CONTEXTS = (1024, 4096, 8192, 16384, 32768, 65536, 131072)


def multi_head(model):
    """`model`'s card as if it had full multi-head attention: a KV head per attention head."""
    c = card(model)
    return replace(c, kv_heads=c.heads, name=f"{c.name} (multi-head)")


def kv_by_context(
    models, contexts=CONTEXTS, kv_dtype: str = "fp16", with_multi_head: bool = True
) -> pd.DataFrame:
    """One row per model × attention × context: the estimator's `kv_cache` bytes
    (`estimate(...).breakdown["kv_cache"]`), for the model and, if asked, its multi-head twin."""
    rows = []
    for m in models:
        c = card(m)
        variants = [("grouped-query", c)]
        if with_multi_head and c.kv_heads != c.heads:
            variants.append(("multi-head", multi_head(c)))
        for attention, variant in variants:
            for n in contexts:
                e = estimate(variant, "bf16", context=n, kv_dtype=kv_dtype)
                rows.append(
                    {
                        "model": c.name,
                        "attention": attention,
                        "kv_heads": variant.kv_heads,
                        "context": n,
                        "kv_cache_bytes": e.breakdown["kv_cache"],
                    }
                )
    return pd.DataFrame(rows)


def kv_figure(
    models=("llama-3.1-8b", "llama-3.1-70b"),
    contexts=CONTEXTS,
    kv_dtype: str = "fp16",
    gpus=(),
    with_multi_head: bool = True,
    title: str = "KV cache vs context: what grouped-query attention saves",
    height: int = 460,
) -> go.Figure:
    """Solid lines: each model's KV cache (GB) by context; dashed: the same model with multi-head
    attention; dotted horizontals: each of `gpus`' memory (as `breakdown_figure` draws them).
    `kv_dtype`: how the cache is stored (the estimator's `KV_DTYPES`: fp16, fp8, q8_0, ...)."""
    df = kv_by_context(models, contexts, kv_dtype, with_multi_head)
    fig = go.Figure()
    for i, ((model, attention), part) in enumerate(df.groupby(["model", "attention"], sort=False)):
        heads = int(part.kv_heads.iloc[0])
        fig.add_scatter(
            x=part.context,
            y=part.kv_cache_bytes / GB,
            mode="lines+markers",
            name=f"{model}, {attention} ({heads} KV heads)",
            line=dict(
                color=COLOURS[list(df.model.unique()).index(model) % len(COLOURS)],
                dash="solid" if attention == "grouped-query" else "dash",
            ),
            hovertemplate="%{x:,} tokens: %{y:.2f} GB<extra></extra>",
            legendrank=i,
        )
    add_gpu_lines(fig, gpus, dash="dot")
    fig.update_layout(
        title=title,
        height=height,
        xaxis=dict(title="context (tokens)", tickformat=","),
        yaxis=dict(title=f"KV cache in {kv_dtype} (GB = 10⁹ bytes)", rangemode="tozero"),
        margin=dict(l=60, r=20, t=50, b=50),
        legend=dict(orientation="h", y=-0.2),
        template="plotly_white",
    )
    return fig
