"""evaluate() on real models with a learner's own small task (capitals, scored with `contains`):
the embedded model in-process (transformers bf16), a GGUF scheme under llama.cpp (q8_0), an adapter
trained here and attached at load, a llama.cpp server started by serve(), and compare() with the
task as a column."""

import pandas as pd
import pytest

import llamalab
from llamalab import evaluate

pytestmark = pytest.mark.slow

PAIRS = [
    ("France", "Paris"),
    ("Italy", "Rome"),
    ("Japan", "Tokyo"),
    ("Spain", "Madrid"),
    ("Germany", "Berlin"),
    ("Egypt", "Cairo"),
    ("Canada", "Ottawa"),
    ("Kenya", "Nairobi"),
]
CAPITALS = [{"prompt": f"What is the capital of {c}?", "expected": a} for c, a in PAIRS]
MAX_NEW = 16


def well_formed(r, scheme: str) -> None:
    """What every evaluation of CAPITALS must hold, whatever the model answers."""
    assert (r.n, r.failed, r.scorer, r.scheme) == (8, 0, "contains", scheme)
    assert r.interval == "wilson" and r.low <= r.score <= r.high
    assert set(r.rows.score) <= {0.0, 1.0} and r.score == r.rows.score.mean()
    assert (r.rows.reply.str.len() > 0).all() and (r.rows.ttft_s > 0).all()
    hits = [e.lower() in reply.lower() for reply, e in zip(r.rows.reply, r.rows.expected)]
    assert r.rows.score.tolist() == [float(h) for h in hits]  # contains, recomputed here


def test_the_embedded_model_in_process(bf16):
    r = evaluate(bf16, CAPITALS, "contains", max_new_tokens=MAX_NEW)
    well_formed(r, "bf16")
    assert r.score >= 0.5, str(r)  # a chat model that knows capitals: a broken prompt scores ~0


def test_a_gguf_scheme_and_compare_show_the_same_task_score():
    df = llamalab.compare(
        "default",
        ["q8_0"],
        ["Hi"],
        quality=False,
        max_new_tokens=4,
        warmup=0,
        evaluation=llamalab.Evaluator(CAPITALS, "contains", max_new_tokens=MAX_NEW),
    )
    row = df.iloc[0]
    assert pd.isna(row.error), row.error
    m = llamalab.load("default", "q8_0", device="cpu")
    try:
        r = evaluate(m, CAPITALS, "contains", max_new_tokens=MAX_NEW)
    finally:
        m.unload()
    well_formed(r, "q8_0")
    assert r.score >= 0.5, str(r)
    # compare() scored the same greedy replies of the same file
    assert (row.task, row.task_n, row.task_score) == ("contains on a list", 8, r.score)
    assert (row.task_score_low, row.task_score_high) == (r.low, r.high)


def test_an_adapter_trained_here_is_evaluated_through_its_adapter(tmp_path):
    data = [
        [{"role": "user", "content": e["prompt"]}, {"role": "assistant", "content": f"ANSWER: {a}"}]
        for e, (_, a) in zip(CAPITALS, PAIRS)
    ]
    starts = llamalab.scorers.Regex(r"^\s*ANSWER:")
    base = llamalab.load("default", "fp32", device="cpu")
    try:
        before = evaluate(base, CAPITALS, "contains", max_new_tokens=MAX_NEW)
        run = llamalab.finetune(
            base,
            data,
            steps=6,
            lr=3e-3,
            batch=4,
            max_length=64,
            eval_every=0,
            warmup_steps=0,
            output=tmp_path,
        ).wait()
    finally:
        base.unload()
    adapted = llamalab.load("default", "fp32", device="cpu", adapter=run.adapter_dir)
    try:
        after = evaluate(adapted, CAPITALS, "contains", max_new_tokens=MAX_NEW)
    finally:
        adapted.unload()
    well_formed(after, "fp32")
    assert "+ adapter" in after.model and "+ adapter" not in before.model
    assert list(after.rows.reply) != list(before.rows.reply)  # the adapter is in the replies
    form, form_before = after.rescore(starts), before.rescore(starts)
    assert form.score > form_before.score, (str(form_before), str(form))


@pytest.mark.server
def test_a_served_endpoint():
    pytest.importorskip("xllamacpp", reason='the deploy extra: pip install -e ".[deploy]"')
    with llamalab.serve("default", scheme="q8_0", context=256, threads=1) as server:
        r = evaluate(server, CAPITALS, "contains", max_new_tokens=MAX_NEW)
        again = evaluate(server.connect(), CAPITALS[:2], "contains", max_new_tokens=MAX_NEW)
    assert not server.alive
    well_formed(r, r.scheme)
    assert r.score >= 0.5, str(r)
    assert list(again.rows.reply) == list(r.rows.reply[:2])  # greedy: the same replies
