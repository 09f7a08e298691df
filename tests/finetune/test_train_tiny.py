"""Real peft training on a tiny random Llama built here: loss falls, files exist, reload is
identical, Stop leaves a checkpoint that resumes, refusals carry their reason."""

import json
import logging
import os
import subprocess
import sys

import pytest

import llamalab
from llamalab import FinetuneRun, finetune

pytestmark = pytest.mark.slow  # ~45 s: peft import, three real runs

ROWS = [
    [
        {"role": "user", "content": f"Say the code for {w}."},
        {"role": "assistant", "content": f"CODE-{w.upper()}"},
    ]
    for w in ("red", "green", "blue", "cyan", "pink", "gold", "gray", "teal")
]
FAST = dict(
    r=8,
    alpha=16,
    lr=2e-2,
    target_modules="all-linear",
    batch=4,
    max_length=64,
    warmup_steps=0,
    eval_every=0,
    schedule="constant",
)


def test_loss_goes_down_and_adapter_reloads_identically(tiny, tiny_dir, tmp_path):
    root = logging.getLogger()
    before = (root.level, list(root.handlers))  # peft imports gptqmodel, which sets INFO on import
    run = finetune(tiny, ROWS, steps=12, output=tmp_path, **FAST).wait()
    assert (root.level, list(root.handlers)) == before  # the learner's logging, untouched
    assert isinstance(run, FinetuneRun) and run.status == "done"
    h = run.history
    assert list(h.step) == list(range(1, 13))
    assert {"loss", "learning_rate", "grad_norm", "tokens_per_s", "elapsed_s", "rss_bytes"} <= set(
        h.columns
    )
    assert h.loss.iloc[-3:].mean() < 0.7 * h.loss.iloc[:3].mean()
    assert 0 < run.trainable_params < run.total_params
    # the estimate is of this run: its adapters (peft's own count),
    # its batch and its longest real row
    from llamalab.train import data as D

    longest = max(
        len(e.input_ids) for e in D.tokenize(tiny.engine.tokenizer, D.conversations(ROWS), 64)
    )
    assert run.estimate.breakdown["adapters"] == 4 * run.trainable_params
    assert (run.estimate.context, run.estimate.batch) == (
        longest,
        FAST["batch"],
    ) and longest < FAST["max_length"]
    files = {p.name for p in run.adapter_dir.iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "llamalab_finetune.json"} <= files
    manifest = json.loads((run.adapter_dir / "llamalab_finetune.json").read_text())
    assert (
        manifest["base_fingerprint"].startswith("local:tiny-llama")
        and manifest["settings"]["r"] == 8
    )
    trained = tiny.generate(ROWS[0][:1], max_new_tokens=8)
    again = llamalab.load(str(tiny_dir), "fp32", device="cpu", adapter=run.adapter_dir)
    try:
        assert again.generate(ROWS[0][:1], max_new_tokens=8).token_ids == trained.token_ids
    finally:
        again.unload()


def stopped_at_step(run, n: int):
    """Start `run` with Stop pressed as step `n` ends (from the run's own thread, as a listener)."""
    run.on_step(lambda rec: rec["step"] == n and run.stop())
    run.start()
    return run.wait()


def test_stop_ends_the_run_after_the_step_in_progress_and_resumes(tiny, tmp_path):
    run = stopped_at_step(finetune(tiny, ROWS, steps=400, output=tmp_path, start=False, **FAST), 3)
    assert run.status == "stopped" and run.step == 3 and run.task.state == "stopped"
    assert (run.checkpoint_dir / "trainer_state.pt").is_file()
    stopped_at, loss_at_stop = run.step, run.history.loss.iloc[-1]
    run.resume(steps=stopped_at + 4).wait()
    assert run.status == "done" and run.step == stopped_at + 4
    assert list(run.history.step) == list(range(1, stopped_at + 5))
    assert (
        run.history.loss.iloc[-1] < loss_at_stop * 1.5
    )  # continued from trained weights, not from scratch
    assert run.adapter_dir is not None


def test_full_finetuning_trains_every_weight(tiny, tmp_path):
    run = finetune(
        tiny, ROWS, method="full", steps=6, output=tmp_path, **{**FAST, "lr": 1e-3}
    ).wait()
    assert run.trainable_params == run.total_params
    assert run.history.loss.iloc[-1] < run.history.loss.iloc[0]
    assert (run.model_dir / "config.json").is_file() and run.adapter_dir is None


def test_a_stopped_run_resumes_in_a_new_process(tiny, tiny_dir, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps({"messages": r}) for r in ROWS))
    run = stopped_at_step(
        finetune(tiny, str(data), steps=400, output=tmp_path / "run", start=False, **FAST), 3
    )
    stopped_at = run.step
    assert run.status == "stopped"
    child = (
        f"import json, llamalab\n"
        f"m = llamalab.load({str(tiny_dir)!r}, 'fp32', device='cpu')\n"
        f"run = llamalab.finetune(m, {str(data)!r}, resume={str(tmp_path / 'run')!r}, "
        f"steps={stopped_at + 3}).wait()\n"
        f"print(json.dumps({{'status': run.status, 'steps': list(run.history.step), "
        f"'method': run.method.name, 'r': run.settings.r, 'loss': list(run.history.loss), "
        f"'adapter': str(run.adapter_dir)}}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", child],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert p.returncode == 0, p.stderr[-2000:]
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["status"] == "done" and out["method"] == "lora" and out["r"] == FAST["r"]
    assert out["steps"] == list(range(1, stopped_at + 4))  # the counter and history continue
    assert out["loss"][:stopped_at] == list(
        run.history.loss
    )  # the stopped run's rows, carried over
    assert out["loss"][-1] < run.history.loss.iloc[0]  # from trained weights, not from scratch
    with pytest.raises(
        llamalab.LlamalabError, match="no stopped run"
    ):  # finished: nothing left to resume
        finetune(tiny, str(data), resume=tmp_path / "run")


def test_a_subprocess_task_trains_and_reports_each_step(tiny_dir, tmp_path):
    from llamalab.core import tasks

    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps({"messages": r}) for r in ROWS))
    steps = []
    job = tasks.start_process(
        "llamalab.train.worker:train",
        kwargs={
            "model": str(tiny_dir),
            "data": str(data),
            "scheme": "fp32",
            "device": "cpu",
            "output": str(tmp_path / "run"),
            "steps": 3,
            **FAST,
        },
        on_event=lambda e: steps.append(e) if e.get("event") == "step" else None,
    )
    result = job.wait(timeout=240)
    assert [e["step"] for e in steps] == [1, 2, 3] and all(e["loss"] > 0 for e in steps)
    assert result["run"]["steps"] == 3 and result["run"]["status"] == "done"
    assert (tmp_path / "run" / "adapter" / "adapter_model.safetensors").is_file()
