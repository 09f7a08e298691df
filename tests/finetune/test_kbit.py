"""QLoRA after a generation: bitsandbytes packs 4-bit layers for its CPU inference kernel (no
backward pass); the run quantizes them again from the checkpoint, bit for bit, and its gradients are
those of a fresh base."""

import pytest

import llamalab
from llamalab import finetune
from llamalab.core import torch_thread
from llamalab.train import kbit

pytestmark = pytest.mark.slow
PROMPT = [{"role": "user", "content": "Name a planet."}]
ONE_STEP = dict(
    steps=1,
    lr=1e-3,
    batch=2,
    max_length=64,
    eval_every=0,
    warmup_steps=0,
    target_modules="all-linear",
    seed=3,
)


@pytest.fixture
def nf4():
    m = llamalab.load("default", "nf4", device="cpu")
    yield m
    m.unload()


def _dequantized(model) -> dict:
    import bitsandbytes.functional as F

    return {
        name: F.dequantize_4bit(mod.weight.data, mod.weight.quant_state).clone()
        for name, mod in kbit.layers(model)
    }


def _packs_here(m) -> int:
    m.generate(PROMPT, max_new_tokens=2)
    n = sum(kbit.is_packed(mod) for _, mod in kbit.layers(m.engine.model))
    if n == 0:
        pytest.skip(
            "bitsandbytes does not pack 4-bit layers on this CPU (no AVX512-BF16): "
            "nothing to restore"
        )
    return n


def test_packed_layers_are_quantized_again_bit_for_bit(nf4):
    fresh = torch_thread.run(_dequantized, nf4.engine.model)
    assert _packs_here(nf4) == len(fresh) > 0
    saved = torch_thread.run(kbit.hold_unpacked, nf4.engine.model, nf4.path)
    assert not any(kbit.is_packed(mod) for _, mod in kbit.layers(nf4.engine.model))
    again = torch_thread.run(_dequantized, nf4.engine.model)
    assert all(again[k].equal(fresh[k]) for k in fresh)
    nf4.generate(PROMPT, max_new_tokens=2)  # packing stays off until the run ends
    assert not any(kbit.is_packed(mod) for _, mod in kbit.layers(nf4.engine.model))
    kbit.release(saved)
    nf4.generate(PROMPT, max_new_tokens=2)
    assert all(kbit.is_packed(mod) for _, mod in kbit.layers(nf4.engine.model))


def test_qlora_after_a_generation_has_the_gradients_of_a_fresh_base(nf4, tmp_path):
    fresh = finetune(nf4, "house-format", "qlora", output=tmp_path / "a", **ONE_STEP).wait()
    again = llamalab.load("default", "nf4", device="cpu")
    try:
        _packs_here(again)
        used = finetune(again, "house-format", "qlora", output=tmp_path / "b", **ONE_STEP).wait()
    finally:
        again.unload()
    assert fresh.status == used.status == "done"
    a, b = fresh.history.iloc[0], used.history.iloc[0]
    assert b.loss == pytest.approx(a.loss, rel=1e-4)
    assert b.grad_norm == pytest.approx(a.grad_norm, rel=1e-3)


def test_a_4bit_merge_after_a_generation_dequantizes_real_weights(nf4, tmp_path):
    """An untrained adapter (B = 0) merged into packed layers:
    only the re-quantization's rounding remains."""
    import warnings

    from llamalab.train.data import conversations
    from llamalab.train.merge import merge

    _packs_here(nf4)
    finetune(nf4, "house-format", "qlora", output=tmp_path, start=False, **ONE_STEP)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = merge(
            nf4,
            prompts=[c[:1] for c in conversations("house-format-heldout")[:3]],
            save=False,
            on_fail="warn",
        )
    assert (
        report.top1_agreement == 1.0 and report.greedy_agreement == 1.0 and report.kl_mean < 0.01
    ), report
