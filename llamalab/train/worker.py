"""Fine-tuning in a subprocess Task (llamalab/core/tasks.py): the same run as `finetune()`, each
step reported as a "step" event (its history row) and a progress event, the run's facts as the
task's result.

    task = tasks.start_process(
        "llamalab.train.worker:train", kwargs={"steps": 20, "batch": 4}, on_event=print
    )
    task.wait()["run"]

The notebook kernel then keeps its own torch thread (and its GIL) free while training runs; the
price is the subprocess's start (imports + loading the model) and a second copy of the model if the
kernel holds one too."""

from __future__ import annotations

from ..core import tasks
from .start import finetune


def train(
    model: str = "default",
    data: str = "house-format",
    method: str = "lora",
    scheme: str | None = None,
    device: str = "auto",
    output: str | None = None,
    resume: str | None = None,
    **settings,
) -> dict:
    """Run `finetune(...)` here and report it step by step (names as in `finetune`;
    JSON-able arguments)."""
    run = finetune(
        model,
        data,
        None if resume else method,
        scheme=scheme,
        device=device,
        output=output,
        resume=resume,
        start=False,
        **settings,
    )

    def report(rec: dict) -> None:  # to the parent, as the subprocess's JSON lines
        tasks.emit("step", **rec)
        tasks.progress(rec["step"], run.total_steps, f"loss {rec['loss']:.3f}")

    run.on_step(report)
    run.start()
    run.wait()
    return {
        "run": run.to_dict(),
        "output_dir": str(run.output_dir),
        "adapter_dir": str(run.adapter_dir) if run.adapter_dir else None,
    }
