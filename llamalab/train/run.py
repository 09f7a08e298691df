"""One fine-tuning run, a thread Task (llamalab/core/tasks.py): its work submits one optimizer step
at a time to the torch thread, records a tidy history, checks `stopping` between steps, and leaves a
checkpoint that `resume()` continues from.

Why steps and not one long torch job: every torch op runs on the one torch thread
(llamalab/core/torch_thread.py); submitting step by step keeps that rule while a generation (or a
Stop click) can slip in between two steps, so nothing waits for the whole run."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog.training import Method
from ..core import memory, tasks, torch_thread
from ..core.errors import InvalidSetting, LlamalabError, TaskStopped
from ..core.paths import cache_dir
from ..plan.estimator import Estimate
from ..runtime.loaded import LoadedModel
from . import kbit
from .settings import FinetuneSettings
from .trainer import Trainer

CHECKPOINT, ADAPTER, MODEL, MANIFEST = "checkpoint", "adapter", "model", "llamalab_finetune.json"


@dataclass
class FinetuneRun:
    """A fine-tuning run in the background: `wait()`, `stop()`, `resume()`, `history`, `merge()`.
    `task` is the Task running it (its state is the run's `status`)."""

    model: LoadedModel
    method: Method
    settings: FinetuneSettings
    output_dir: Path
    estimate: Estimate
    trainable_params: int
    total_params: int
    train_rows: int
    eval_rows: int
    total_steps: int
    base_fingerprint: str = ""
    data_name: str = ""
    step: int = 0
    measured_peak_bytes: int | None = None
    task: tasks.Task | None = field(default=None, repr=False)
    _trainer: Trainer | None = field(default=None, repr=False)
    _records: list = field(default_factory=list, repr=False)
    _listeners: list = field(default_factory=list, repr=False)
    _base_rss: int = field(default=0, repr=False)
    _t_start: float = field(default=0.0, repr=False)
    _elapsed_before: float = field(default=0.0, repr=False)

    # ------------------------------------------------------------------ what a learner reads
    @property
    def status(self) -> str:
        """The task's state (starting → running → done | stopped | failed);
        "starting" before `start()`."""
        return self.task.state if self.task is not None else "starting"

    @property
    def error(self) -> BaseException | None:
        return self.task.error if self.task is not None and self.status == "failed" else None

    @property
    def done(self) -> bool:
        """True once the run has ended (done, stopped or failed)."""
        return self.task is not None and not self.task.running

    @property
    def history(self):
        """One row per step: step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s,
        rss_bytes (and CUDA allocated/reserved on a GPU), eval_loss where it was computed."""
        import pandas as pd

        return pd.DataFrame(list(self._records))

    @property
    def adapter_dir(self) -> Path | None:
        """The saved adapter (peft format + llamalab_finetune.json); None for method='full'
        or before the end."""
        p = self.output_dir / ADAPTER
        return p if self.method.adapters and (p / MANIFEST).is_file() else None

    @property
    def model_dir(self) -> Path | None:
        """The saved full checkpoint of method='full' (a normal folder load() accepts)."""
        p = self.output_dir / MODEL
        return p if not self.method.adapters and (p / MANIFEST).is_file() else None

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / CHECKPOINT

    @property
    def estimated_bytes(self) -> int:
        """The estimator's bytes for this run without the Python runtime (weights + training
        state + activations)."""
        return self.estimate.total_bytes - self.estimate.breakdown["overhead"]

    @property
    def estimate_error_pct(self) -> float | None:
        if not self.measured_peak_bytes:
            return None
        return 100.0 * (self.estimated_bytes - self.measured_peak_bytes) / self.measured_peak_bytes

    def on_step(self, fn) -> None:
        """Call `fn(record: dict)` after every step (from the run's thread; keep it quick)."""
        self._listeners.append(fn)

    def wait(self, timeout: float | None = None) -> FinetuneRun:
        """Block until the run ends; raise its error if it failed (a stopped run is no error: it can
        resume). Ctrl-C stops it at the next step boundary, then raises KeyboardInterrupt."""
        if self.task is not None:
            try:
                self.task.wait(timeout)
            except TaskStopped:
                pass
        return self

    def stop(self) -> None:
        """End the run after the step in progress, from any thread; a checkpoint is
        saved for resume()."""
        if self.task is not None:
            self.task.stop()

    def resume(self, steps: int | None = None) -> FinetuneRun:
        """Continue a stopped run from its checkpoint on disk (optionally to a new
        total of `steps`)."""
        if self.task is not None and self.task.running:
            raise LlamalabError(
                "This run is still going.", "Call stop() and wait() before resume()."
            )
        if not (self.checkpoint_dir / "trainer_state.pt").is_file():
            raise LlamalabError(
                f"No checkpoint in {self.checkpoint_dir}.", "Only a stopped run can resume."
            )
        if steps is not None:
            self.total_steps = steps
        self.restore()
        self.start()
        return self

    def restore(self) -> None:
        """Load the checkpoint's weights, optimizer, schedule, step and history into this
        run (not started)."""
        step, records = torch_thread.run(self._trainer.load_checkpoint, self.checkpoint_dir)
        self.step, self._records[:] = step, records
        self._elapsed_before = records[-1]["elapsed_s"] if records else 0.0

    def to_dict(self) -> dict:
        """The run's facts in one record (the metrics vocabulary's names)."""
        h = self._records
        return {
            "method": self.method.name,
            "model": self.model.name,
            "scheme": self.model.scheme_name,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "steps": self.step,
            "final_loss": h[-1]["loss"] if h else None,
            "final_eval_loss": _last(h, "eval_loss"),
            "step_s": _median([r["step_s"] for r in h]),
            "tokens_per_s": _median([r["tokens_per_s"] for r in h]),
            "peak_train_bytes": self.measured_peak_bytes,
            "estimated_train_bytes": self.estimated_bytes,
            "train_estimate_error_pct": self.estimate_error_pct,
            "status": self.status,
        }

    def merge(self, **kwargs):
        """Merge the adapter into the base and check the result (see llamalab.merge)."""
        from .merge import merge

        return merge(self, **kwargs)

    def __repr__(self) -> str:
        loss = f", loss {self._records[-1]['loss']:.3f}" if self._records else ""
        return (
            f"FinetuneRun({self.method.name} on {self.model.name}/{self.model.scheme_name}, "
            f"step {self.step}/{self.total_steps}{loss}, {self.status}, "
            f"trainable {self.trainable_params:,} of {self.total_params:,})"
        )

    # ------------------------------------------------------------------ the task's work
    def start(self) -> None:
        self.task = tasks.start_thread(self._drive, label=f"{self.method.name} fine-tuning")

    def _drive(self, task: tasks.Task) -> None:
        four_bit = []
        try:
            four_bit = torch_thread.run(kbit.hold_unpacked, self._trainer.model, self.model.path)
            memory.release_freed_memory()
            self._base_rss = (memory.rss_bytes() or 0) - (self.model.weights_memory_bytes or 0)
            memory.reset_peak(self.model.device)
            self._t_start = time.perf_counter()
            while self.step < self.total_steps and not task.stopping:
                self._one_step(task)
            if task.stopping and self.step < self.total_steps:
                torch_thread.run(
                    self._trainer.save_checkpoint, self.checkpoint_dir, self.step, self._records
                )
                (self.checkpoint_dir / MANIFEST).write_text(json.dumps(self.manifest(), indent=1))
            else:
                torch_thread.run(self._finish)
                (self.checkpoint_dir / MANIFEST).unlink(missing_ok=True)  # nothing left to resume
        finally:
            self._measure_peak()
            torch_thread.run(kbit.release, four_bit)
            if self._trainer.engine.model is not None:
                self._trainer.engine.model.eval()

    def _one_step(self, task: tasks.Task) -> None:
        rec = torch_thread.run(self._trainer.step, self.step)
        self.step += 1
        s = self.settings
        if s.eval_every and (self.step % s.eval_every == 0 or self.step == self.total_steps):
            rec["eval_loss"] = torch_thread.run(self._trainer.eval_loss)
        rec = {
            "step": self.step,
            **rec,
            "elapsed_s": self._elapsed_before + time.perf_counter() - self._t_start,
            **memory.reading(self.model.device),
        }
        self._records.append(rec)
        task.emit("step", **rec)
        task.progress(self.step, self.total_steps, f"loss {rec['loss']:.3f}")
        for fn in list(self._listeners):
            fn(rec)

    def _measure_peak(self) -> None:
        """CUDA: max allocated since the start; CPU: the run's RSS high-water mark minus what was
        resident before it, weights excluded (so the weights count once, as in the estimate)."""
        peak = memory.peak_bytes(self.model.device)
        if self.model.device.startswith("cuda"):
            self.measured_peak_bytes = peak
            return
        peak = max([peak or 0] + [r.get("rss_bytes", 0) for r in self._records])
        if peak:
            self.measured_peak_bytes = max(0, peak - self._base_rss)

    def _finish(self) -> None:
        """Save the adapter (or the full model) with the base's fingerprint and
        the run's settings."""
        out = self.output_dir / (ADAPTER if self.method.adapters else MODEL)
        out.mkdir(parents=True, exist_ok=True)
        self._trainer.save_weights(out)
        self._trainer.engine.model.eval()
        (out / MANIFEST).write_text(json.dumps(self.manifest(), indent=1))

    def manifest(self) -> dict:
        return {
            "kind": "adapter" if self.method.adapters else "full",
            "method": self.method.name,
            "base_model": self.model.name,
            "base_scheme": self.model.scheme_name,
            "base_path": self.model.path,
            "base_fingerprint": self.base_fingerprint,
            "settings": self.settings.to_dict(),
            "data": self.data_name,
            "steps": self.step,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "final_loss": self._records[-1]["loss"] if self._records else None,
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def _median(xs):
    xs = sorted(x for x in xs if x == x)
    return xs[len(xs) // 2] if xs else None


def _last(records, key):
    vals = [r[key] for r in records if key in r and r[key] == r[key]]
    return vals[-1] if vals else None


def default_output(model_name: str, method: str) -> Path:
    return (
        cache_dir()
        / "finetune"
        / f"{model_name}-{method}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    )


def steps_for(settings: FinetuneSettings, train_rows: int) -> int:
    if settings.epochs is None:
        return settings.steps
    per_step = settings.batch * settings.grad_accum
    return max(1, math.ceil(settings.epochs * train_rows / per_step))


def saved_checkpoint(folder) -> tuple[Path, dict]:
    """(the run's output folder, its checkpoint manifest) for a stopped run's folder
    or its checkpoint/."""
    p = Path(folder)
    out = p.parent if p.name == CHECKPOINT else p
    manifest = out / CHECKPOINT / MANIFEST
    if not (out / CHECKPOINT / "trainer_state.pt").is_file() or not manifest.is_file():
        raise InvalidSetting(
            f"resume={folder}: no stopped run's checkpoint there.",
            "Pass the output folder of a run that was stopped (run.output_dir); a finished "
            "run has nothing left to resume: start a new one from its adapter instead.",
        )
    return out, json.loads(manifest.read_text())


def check_output(output) -> Path | None:
    if output is None:
        return None
    p = Path(output)
    if p.exists() and not p.is_dir():
        raise InvalidSetting(
            f"output={output} is a file.", "Pass a folder (it is created if missing)."
        )
    return p
