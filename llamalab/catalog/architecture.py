"""Architecture arithmetic: the linear layers of a decoder and the parameters they add up to.

Lives with the catalog because reading a card (from a config.json or a GGUF file) needs it, and
the estimator, which sits above the catalog, builds on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import ModelCard


def linear_shapes(c: ModelCard, active: bool = False) -> list[tuple[int, int, int]]:
    """(in, out, count) of every linear layer in the whole model, lm_head excluded;
    `active=True` counts only the experts that run per token (MoE)."""
    q, kv = c.heads * c.head_dim, c.kv_heads * c.head_dim
    experts = (c.experts_active if active else c.experts) if c.is_moe else 1
    mlp = [(c.hidden, c.intermediate, experts)] * (2 if c.mlp == "gated" else 1) + [
        (c.intermediate, c.hidden, experts)
    ]
    per_layer = [(c.hidden, q, 1), (c.hidden, kv, 2), (q, c.hidden, 1), *mlp]
    return [(i, o, n * c.layers) for i, o, n in per_layer]


def count_params(c: ModelCard, active: bool = False) -> int:
    """Parameters from the architecture (norms included, biases ignored)."""
    linear = sum(i * o * n for i, o, n in linear_shapes(c, active))
    router = c.layers * c.hidden * c.experts if c.is_moe else 0
    norms = (2 * c.layers + 1) * c.hidden
    return linear + router + norms + c.embedding_params


def config_fields(cfg: dict) -> dict:
    """The card's shape fields from a Hugging Face config.json (multimodal configs:
    their text_config)."""
    cfg = {**cfg.get("text_config", {}), **cfg}
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    return dict(
        layers=cfg["num_hidden_layers"],
        hidden=hidden,
        intermediate=cfg.get("intermediate_size", 4 * hidden),
        heads=heads,
        kv_heads=cfg.get("num_key_value_heads") or heads,
        head_dim=cfg.get("head_dim") or hidden // heads,
        vocab=cfg["vocab_size"],
        context=cfg.get("max_position_embeddings", 2048),
        tied_embeddings=cfg.get("tie_word_embeddings", False),
        experts=cfg.get("num_local_experts", 0),
        experts_active=cfg.get("num_experts_per_tok", 0),
    )
