"""Safe merge and adapter switching on the tiny Llama: a real merge passes its check, a corrupted
one is caught and undone, the merged folder loads, several adapters share one base."""

import pytest

import llamalab
from llamalab import (
    MergeCheckFailed,
    adapters,
    add_adapter,
    finetune,
    list_adapters,
    remove_adapters,
    use_adapter,
)

pytestmark = pytest.mark.slow

SETTINGS = dict(
    r=8,
    alpha=16,
    lr=2e-2,
    batch=4,
    max_length=64,
    warmup_steps=0,
    eval_every=0,
    schedule="constant",
    target_modules="all-linear",
    steps=8,
)


def rows(tag):
    return [
        [
            {"role": "user", "content": f"Code for {w}?"},
            {"role": "assistant", "content": f"{tag}-{w}"},
        ]
        for w in ("red", "green", "blue", "cyan", "pink", "gold", "gray", "teal")
    ]


PROMPTS = [r[:1] for r in rows("x")[:3]]


def trained(tiny_dir, tmp_path, tag):
    m = llamalab.load(str(tiny_dir), "fp32", device="cpu")
    return finetune(m, rows(tag), output=tmp_path / tag, **SETTINGS).wait()


def greedy(m, prompt=PROMPTS[0]):
    return m.generate(prompt, max_new_tokens=6).token_ids


def test_merge_is_checked_saved_and_loads(tiny_dir, tmp_path):
    run = trained(tiny_dir, tmp_path, "A")
    before = greedy(run.model)
    report = run.merge(prompts=PROMPTS)
    assert (
        report.passed
        and report.kl_mean < 1e-4
        and report.top1_agreement == 1
        and report.greedy_agreement == 1
    )
    assert greedy(run.model) == before
    again = llamalab.load(report.merged_dir, "fp32", device="cpu")
    try:
        assert greedy(again) == before
    finally:
        again.unload()
        run.model.unload()


def test_corrupted_merge_is_caught_and_undone(tiny_dir, tmp_path, monkeypatch):
    run = trained(tiny_dir, tmp_path, "B")
    engine = run.model.engine
    real = engine.merge_adapters

    def noise():
        import torch

        with torch.no_grad():
            w = engine.model.model.layers[0].mlp.down_proj.base_layer.weight
            w.add_(torch.randn_like(w) * w.abs().mean() * 3)

    def corrupt():
        real()
        llamalab.on_torch_thread(noise)

    monkeypatch.setattr(engine, "merge_adapters", corrupt)
    with pytest.raises(MergeCheckFailed) as e:
        run.merge(prompts=PROMPTS, save=False)
    assert not e.value.report.passed and e.value.report.kl_mean > 1e-3
    assert "not kept" in str(e.value)
    run.model.unload()


def test_several_adapters_on_one_base(tiny_dir, tmp_path):
    a, b = trained(tiny_dir, tmp_path, "A"), trained(tiny_dir, tmp_path, "B")
    want_a, want_b = greedy(a.model), greedy(b.model)
    a.model.unload(), b.model.unload()
    base = llamalab.load(str(tiny_dir), "fp32", device="cpu")
    plain = greedy(base)
    base.unload()
    m = llamalab.load(str(tiny_dir), "fp32", device="cpu", adapter=a.adapter_dir)
    try:
        assert greedy(m) == want_a
        add_adapter(m, b.adapter_dir, "b")
        assert adapters(m) == {"names": ["default", "b"], "active": "default"}
        use_adapter(m, "b")
        assert greedy(m) == want_b
        assert isinstance(m.generate(PROMPTS[0], max_new_tokens=3), llamalab.Generation)
        remove_adapters(m)
        assert greedy(m) == plain
    finally:
        m.unload()
    listed = list_adapters(tmp_path)
    assert len(listed) == 2 and set(listed.method) == {"lora"}
