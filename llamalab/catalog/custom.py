"""A model card for a model the catalog does not know, from its parameter count alone.

The shape (layers, KV heads, head size, vocab) is borrowed from the modern grouped-query
model of the catalog closest in size, so KV cache and activations stay plausible; only the
parameter count is yours.
"""

from __future__ import annotations

from dataclasses import replace

from ..core import validate
from . import ModelCard, card

# Dense grouped-query-attention models spanning 135M..405B: the usual shape of a new open model.
TEMPLATES = (
    "smollm2-135m",
    "qwen2.5-0.5b",
    "llama-3.2-1b",
    "llama-3.2-3b",
    "llama-3.1-8b",
    "mistral-small",
    "llama-3.1-70b",
    "mistral-large",
    "llama-3.1-405b",
)


def nearest_template(params: int) -> ModelCard:
    """The template model whose parameter count is closest (as a ratio) to `params`."""
    cards = [card(n) for n in TEMPLATES]
    return min(cards, key=lambda c: max(c.params, params) / min(c.params, params))


def custom_card(
    params_b: float, like: str | ModelCard | None = None, context: int | None = None
) -> ModelCard:
    """A card with `params_b` billion parameters shaped like `like` (default:
    the nearest template)."""
    params_b = validate.number("params_b", params_b, 0.000_001, 10_000)
    if context is not None:
        validate.integer("context", context, 1)
    params = int(params_b * 1e9)
    base = card(like) if like is not None else nearest_template(params)
    return replace(
        base,
        name=f"custom-{params_b:g}b",
        display=f"Custom {params_b:g}B (shaped like {base.display})",
        params=params,
        active_params=params,
        hub_id="",
        hub_id_instruct="",
        gptq=(),
        awq=(),
        aliases=(),
        source=f"custom: {params_b:g}B parameters, architecture of {base.name}",
        context=context or base.context,
        variant="base",
        local_path="",
        gguf_type="",
    )
