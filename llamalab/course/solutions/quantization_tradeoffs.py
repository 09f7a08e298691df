"""Notebook 02's exercises: bits per weight of group-wise storage, the int8 size predicted before
it is measured, a scheme chosen from the measured table, and what a smaller group does."""

from __future__ import annotations

from ...catalog import card
from ..workbook import change, compute, decide, predict

MAX_SIZE = 0.40  # of fp32's weights in memory
MAX_KL = 0.05  # nats per token against bf16


def int8_ratio(**_) -> float:
    """Linear weights 1 byte instead of 4; the embedding and the norms stay 16-bit."""
    c = card("default")
    kept = c.embedding_params + (2 * c.layers + 1) * c.hidden
    return ((c.params - kept) * 1 + kept * 2) / (c.params * 4)


def from_table(choice, *, table) -> tuple[bool, str]:
    """A scheme measured above with weights ≤ 40 % of fp32's and KL vs bf16 ≤ 0.05."""
    if choice not in table.index:
        return (
            False,
            f"{choice!r} was not measured above (the table's schemes: {', '.join(table.index)})",
        )
    size = table.loc[choice, "weights_memory_bytes"] / table.loc["fp32", "weights_memory_bytes"]
    kl = table.loc[choice, "kl_vs_reference"]
    numbers = f"weights {size:.0%} of fp32's, KL vs bf16 {kl:.4f} nats/token"
    return bool(size <= MAX_SIZE and kl <= MAX_KL), numbers


EXERCISES = {
    1: predict(
        int8_ratio,
        within=1.15,
        why="int8 stores each linear weight in 1 byte instead of 4, but the tied 49152 × 576 "
        "embedding (21 % of this model's parameters) and the norms stay 16-bit: the ratio sits "
        "above ¼. The larger the model, the smaller the embedding's share and the closer to ¼.",
    ),
    2: compute(
        lambda *, table, **_: table.set_index("method").loc[
            "4-bit zero-point, groups of 64", "bits per weight (scales incl.)"
        ],
        lambda **_: 4 + (16 + 16) / 64,
        rel=0.01,
        why="4 bits + 32 bits of scale and zero shared by 64 weights",
        hint="a group's scale and zero are stored once and shared by its 64 weights.",
    ),
    3: change(
        lambda **_: "down",
        why="a smaller group gets a scale and zero fitted to fewer weights, so an outlier spoils "
        "fewer neighbours; the price is bits: with 16-bit scale and zero, 4 + 32/16 = 6 bits per "
        "weight instead of 4.5.",
    ),
    4: decide(
        from_table,
        lambda **_: "q8_0",
        need=f"weights ≤ {MAX_SIZE:.0%} of fp32's and KL vs bf16 ≤ {MAX_KL} nats/token, "
        "measured on this model",
        hint="read `ok` (the measured table): `weights_memory_bytes` and `kl_vs_reference`.",
    ),
}
