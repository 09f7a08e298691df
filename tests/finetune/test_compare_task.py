"""finetune_compare(evaluation=...) on the tiny random Llama: each variant is scored on the
learner's task before and after training, next to the house-format columns."""

import pytest

from llamalab import finetune_compare

pytestmark = pytest.mark.slow

CODES = ("red", "green", "blue", "cyan")
ROWS = [
    [
        {"role": "user", "content": f"Say the code for {w}."},
        {"role": "assistant", "content": f"CODE-{w.upper()}"},
    ]
    for w in CODES
]
TASK = [{"prompt": f"Say the code for {w}.", "expected": f"CODE-{w.upper()}"} for w in CODES]


def test_each_variant_gets_the_task_score_before_and_after(tiny_dir):
    df = finetune_compare(
        str(tiny_dir),
        ROWS,
        variants=["lora (all-linear)"],
        steps=20,
        lr=2e-2,
        r=8,
        alpha=16,
        batch=4,
        max_length=64,
        warmup_steps=0,
        schedule="constant",
        n_heldout=2,
        ppl_tokens=64,
        max_new_tokens=8,
        schemes={"lora": "fp32"},
        device="cpu",
        evaluation=(TASK, "contains"),
    )
    row = df.iloc[0]
    assert row.status == "done", row.reason
    assert (row.task, row.task_n) == ("contains on a list", 4)
    assert row.task_score_before == 0.0  # a random model does not say CODE-RED
    assert row.task_score_after > row.task_score_before, row.to_dict()
    assert row.task_score_after_low <= row.task_score_after <= row.task_score_after_high
    assert "compliance_after_pct" in df and "perplexity_after" in df
