"""On the embedded SmolLM2-135M: a short LoRA run with its task score before and after; QLoRA over
nf4 and LoRA over GPTQ really train on this CPU; a GPTQ base refuses to merge with the reason."""

import pytest

import llamalab
from llamalab import evaluate, finetune

pytestmark = pytest.mark.slow
SHORT = dict(batch=4, max_length=96, eval_every=0, warmup_steps=0, target_modules="all-linear")


def test_short_lora_run_scores_before_and_after(tmp_path):
    m = llamalab.load("default", "fp32", device="cpu")
    try:
        before = evaluate(m, "house-format-heldout", "house_format", n=4, max_new_tokens=16)
        run = finetune(m, "house-format", steps=8, lr=3e-3, output=tmp_path, **SHORT).wait()
        after = evaluate(m, "house-format-heldout", "house_format", n=4, max_new_tokens=16)
        h = run.history
        assert h.loss.iloc[-3:].mean() < h.loss.iloc[:3].mean()
        assert before.n == after.n == 4 and before.score == 0
        assert after.score >= before.score
        assert run.measured_peak_bytes > run.model.weights_memory_bytes
    finally:
        m.unload()


@pytest.mark.parametrize("method, scheme", [("qlora", "nf4"), ("lora", "gptq-4bit")])
def test_quantized_bases_train_here(method, scheme, tmp_path):
    try:
        m = llamalab.load("default", scheme, device="cpu")
    except llamalab.ModelNotCached as e:
        pytest.skip(f"the {scheme} checkpoint is not cached here: {e.message}")
    try:
        run = finetune(
            m,
            "house-format",
            method,
            steps=2,
            lr=1e-3,
            output=tmp_path,
            **{**SHORT, "batch": 1, "max_length": 64},  # one example a step: fp16 is slow on CPU
        ).wait()
        assert run.status == "done" and len(run.history) == 2 and run.adapter_dir is not None
        assert 0 < run.trainable_params < run.total_params
        if scheme.startswith("gptq"):
            with pytest.raises(llamalab.LlamalabError, match="cannot merge"):
                run.merge()
    finally:
        m.unload()


def test_dora_trains_saves_and_reloads(tmp_path):
    import math

    m = llamalab.load("default", "fp32", device="cpu")
    try:
        run = finetune(
            m,
            "house-format",
            "dora",
            steps=3,
            lr=2e-3,
            output=tmp_path,
            **{**SHORT, "batch": 2, "max_length": 64, "target_modules": "guide"},
        ).wait()
        assert run.status == "done" and all(math.isfinite(x) for x in run.history.loss)
        cfg = (run.adapter_dir / "adapter_config.json").read_text()
        assert '"use_dora": true' in cfg
        prompt = [{"role": "user", "content": "Name a planet."}]
        trained = m.generate(prompt, max_new_tokens=8).token_ids
    finally:
        m.unload()
    again = llamalab.load("default", "fp32", device="cpu", adapter=run.adapter_dir)
    try:
        assert again.generate(prompt, max_new_tokens=8).token_ids == trained
    finally:
        again.unload()
