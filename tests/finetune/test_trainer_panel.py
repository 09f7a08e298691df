"""TrainerPanel on the tiny Llama: Train draws the curves and before/after outputs; Stop then
Resume; errors inline."""

import time

import pytest

import llamalab

pytestmark = pytest.mark.slow

FAST = dict(r=4, alpha=8, lr=2e-2, batch=4, max_length=64, target_modules="all-linear")
ROWS = [
    [{"role": "user", "content": f"Code for {w}?"}, {"role": "assistant", "content": f"C-{w}"}]
    for w in ("red", "green", "blue", "cyan", "pink", "gold", "gray", "teal")
]


def test_train_stop_resume_and_outputs(tiny):
    from llamalab.widgets import TrainerPanel

    panel = TrainerPanel(tiny, data=ROWS, prompts=[r[:1] for r in ROWS[:2]], steps=300, **FAST)
    assert "learning rate" in panel.controls["lr"].tooltip.lower()
    panel.train_b.click()
    while panel.run is None or panel.run.step < 2:
        time.sleep(0.05)
    panel.stop_b.click()
    assert panel.wait(10)
    assert panel.run.status == "stopped" and not panel.resume_b.disabled
    panel.run.total_steps = panel.run.step + 2
    panel.resume_b.click()
    assert panel.wait(60)
    assert panel.run.status == "done", panel.errors.message
    assert list(panel.figure.data[0].x) == list(
        range(1, panel.run.step + 1)
    )  # re-synced at the end
    assert "before" in panel.outputs.value and "Code for red?" in panel.outputs.value
    assert panel.pushes <= panel.run.step + 3
    # the model now carries the adapter: Train stays off, and a scripted train() says why
    assert panel.train_b.disabled and "already carries" in panel.train_b.tooltip
    with pytest.raises(llamalab.LlamalabError, match="fresh base"):
        panel.train()


def test_bad_setting_shows_inline(tiny):
    from llamalab.widgets import TrainerPanel

    panel = TrainerPanel(tiny, data=ROWS, prompts=[ROWS[0][:1]], **FAST)
    panel.controls["batch"].value = 0
    panel.train_b.click()
    panel.wait(30)
    assert "batch" in panel.errors.message and panel.run is None and not panel.train_b.disabled
