"""Real peft training on a tiny random Llama built here: loss falls, files exist, reload is identical,
Stop leaves a checkpoint that resumes, refusals carry their reason."""
import json
import time

import pytest

import llamalab
from llamalab.finetune import FinetuneRun, finetune

pytestmark = pytest.mark.slow     # ~45 s: peft import, three real runs

ROWS = [[{"role": "user", "content": f"Say the code for {w}."}, {"role": "assistant", "content": f"CODE-{w.upper()}"}]
        for w in ("red", "green", "blue", "cyan", "pink", "gold", "gray", "teal")]
FAST = dict(r=8, alpha=16, lr=2e-2, target_modules="all-linear", batch=4, max_length=64, warmup_steps=0, eval_every=0, schedule="constant")


def test_loss_goes_down_and_adapter_reloads_identically(tiny, tiny_dir, tmp_path):
    run = finetune(tiny, ROWS, steps=12, output=tmp_path, **FAST).wait()
    assert isinstance(run, FinetuneRun) and run.status == "done"
    h = run.history
    assert list(h.step) == list(range(1, 13))
    assert {"loss", "learning_rate", "grad_norm", "tokens_per_s", "elapsed_s", "rss_bytes"} <= set(h.columns)
    assert h.loss.iloc[-3:].mean() < 0.7 * h.loss.iloc[:3].mean()
    assert 0 < run.trainable_params < run.total_params
    files = {p.name for p in run.adapter_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "llamalab_finetune.json"} <= files
    manifest = json.loads((run.adapter_dir / "llamalab_finetune.json").read_text())
    assert manifest["base_fingerprint"].startswith("local:tiny-llama") and manifest["settings"]["r"] == 8
    trained = tiny.generate(ROWS[0][:1], max_new_tokens=8)
    again = llamalab.load(str(tiny_dir), "fp32", device="cpu", adapter=run.adapter_dir)
    try:
        assert again.generate(ROWS[0][:1], max_new_tokens=8).token_ids == trained.token_ids
    finally:
        again.unload()


def test_stop_mid_run_is_quick_and_resumes(tiny, tmp_path):
    run = finetune(tiny, ROWS, steps=400, output=tmp_path, **FAST)
    while run.step < 3:
        time.sleep(0.01)
    t0 = time.perf_counter()
    run.stop()
    run.wait()
    assert time.perf_counter() - t0 < 2.0
    assert run.status == "stopped" and 3 <= run.step < 400
    assert (run.checkpoint_dir / "trainer_state.pt").is_file()
    stopped_at, loss_at_stop = run.step, run.history.loss.iloc[-1]
    run.resume(steps=stopped_at + 4).wait()
    assert run.status == "done" and run.step == stopped_at + 4
    assert list(run.history.step) == list(range(1, stopped_at + 5))
    assert run.history.loss.iloc[-1] < loss_at_stop * 1.5       # continued from trained weights, not from scratch
    assert run.adapter_dir is not None


def test_full_finetuning_trains_every_weight(tiny, tmp_path):
    run = finetune(tiny, ROWS, method="full", steps=6, output=tmp_path, **{**FAST, "lr": 1e-3}).wait()
    assert run.trainable_params == run.total_params
    assert run.history.loss.iloc[-1] < run.history.loss.iloc[0]
    assert (run.model_dir / "config.json").is_file() and run.adapter_dir is None
