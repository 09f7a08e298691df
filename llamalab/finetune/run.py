"""One fine-tuning run: a driver thread submits one optimizer step at a time to the torch thread, records
a tidy history, checks a stop flag between steps, and leaves a checkpoint that `resume()` continues from.

Why steps and not one long task: every torch op runs on the one torch thread (runtime/torch_thread.py);
submitting step by step keeps that rule while a generation (or a Stop click) can slip in between two
steps, so nothing waits for the whole run."""
from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import catalog
from ..errors import InvalidSetting, LlamalabError
from ..estimate import Estimate
from ..paths import cache_dir
from ..runtime import torch_thread
from ..runtime.loaded import LoadedModel
from ..runtime.meter import _peak_rss, _reset_peak_rss, release_freed_memory
from . import data as D
from . import kbit
from .settings import FinetuneSettings

CHECKPOINT, ADAPTER, MODEL, MANIFEST = "checkpoint", "adapter", "model", "llamalab_finetune.json"


@dataclass
class Trainer:
    """The torch-side state of a run (model, optimizer, batches); its methods run on the torch thread."""
    loaded: LoadedModel
    method: str
    settings: FinetuneSettings
    train: list
    eval: list
    total_steps: int
    peft_model: object = None
    optimizer: object = None
    scheduler: object = None
    params: list = field(default_factory=list)

    @property
    def model(self):
        return self.peft_model if self.peft_model is not None else self.loaded.model

    def micro_batch(self, k: int):
        """The k-th micro-batch of the run: a seeded shuffle per epoch, so a resumed run sees the same order."""
        import random
        b = self.settings.batch
        per_epoch = max(1, len(self.train) // b)
        epoch, i = divmod(k, per_epoch)
        order = list(range(len(self.train)))
        random.Random(self.settings.seed * 1000 + epoch).shuffle(order)
        return collate([self.train[j] for j in order[i * b:(i + 1) * b]], self.pad_id, self.model.device)

    @property
    def pad_id(self) -> int:
        tok = self.loaded.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)

    def step(self, step: int) -> dict:
        """One optimizer step (grad_accum micro-batches): loss, grad norm, lr, tokens and seconds."""
        import torch
        s, model = self.settings, self.model
        model.train()
        t0, loss_sum, tokens = time.perf_counter(), 0.0, 0
        for a in range(s.grad_accum):
            batch = self.micro_batch(step * s.grad_accum + a)
            loss = model(**batch).loss / s.grad_accum
            loss.backward()
            loss_sum += float(loss.detach())
            tokens += int(batch["attention_mask"].sum())
        norm = torch.nn.utils.clip_grad_norm_(self.params, s.max_grad_norm if s.max_grad_norm > 0 else float("inf"))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        return {"loss": loss_sum, "learning_rate": lr, "grad_norm": float(norm), "tokens": tokens,
                "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"), "step_s": seconds}

    def eval_loss(self) -> float:
        """Mean loss over the held-out examples (token-weighted), dropout off."""
        import torch
        if not self.eval:
            return float("nan")
        model, b, total, n = self.model, self.settings.batch, 0.0, 0
        model.eval()
        with torch.no_grad():
            for i in range(0, len(self.eval), b):
                chunk = self.eval[i:i + b]
                k = sum(e.trained_tokens for e in chunk)
                total += float(model(**collate(chunk, self.pad_id, model.device)).loss) * k
                n += k
        return total / n

    def save_checkpoint(self, folder: Path, step: int, history: list) -> None:
        import torch
        folder.mkdir(parents=True, exist_ok=True)
        self.save_weights(folder)
        torch.save({"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                    "step": step}, folder / "trainer_state.pt")
        (folder / "history.json").write_text(json.dumps(history))

    def load_checkpoint(self, folder: Path) -> tuple[int, list]:
        import torch
        state = torch.load(folder / "trainer_state.pt", weights_only=False)
        self.load_weights(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        return state["step"], json.loads((folder / "history.json").read_text())

    def save_weights(self, folder: Path) -> None:
        if self.peft_model is not None:
            self.peft_model.save_pretrained(str(folder))
        else:
            self.loaded.model.save_pretrained(str(folder))
            self.loaded.tokenizer.save_pretrained(str(folder))

    def load_weights(self, folder: Path) -> None:
        if self.peft_model is not None:
            from peft import set_peft_model_state_dict
            from safetensors.torch import load_file
            set_peft_model_state_dict(self.peft_model, load_file(str(folder / "adapter_model.safetensors")))
        else:
            from safetensors.torch import load_file
            state = {}
            for f in sorted(folder.glob("*.safetensors")):
                state.update(load_file(str(f)))
            self.loaded.model.load_state_dict(state, strict=False)


def collate(examples, pad_id: int, device) -> dict:
    """Right-padded input_ids / attention_mask / labels tensors (padding never counts in the loss)."""
    import torch
    n = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), n), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), n), D.IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), n), dtype=torch.long)
    for i, e in enumerate(examples):
        k = len(e.input_ids)
        ids[i, :k] = torch.tensor(e.input_ids)
        labels[i, :k] = torch.tensor(e.labels)
        mask[i, :k] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


@dataclass
class FinetuneRun:
    """A fine-tuning run in the background: `wait()`, `stop()`, `resume()`, `history`, `merge()`."""
    model: LoadedModel
    method: str
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
    status: str = "starting"            # running → done | stopped | failed
    error: BaseException | None = None
    step: int = 0
    measured_peak_bytes: int | None = None
    _trainer: Trainer | None = field(default=None, repr=False)
    _records: list = field(default_factory=list, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _listeners: list = field(default_factory=list, repr=False)
    _base_rss: int = field(default=0, repr=False)
    _t_start: float = field(default=0.0, repr=False)
    _elapsed_before: float = field(default=0.0, repr=False)

    # ------------------------------------------------------------------ what a learner reads
    @property
    def history(self):
        """One row per step: step, loss, learning_rate, grad_norm, tokens_per_s, elapsed_s, rss_bytes
        (and CUDA allocated/reserved on a GPU), eval_loss where it was computed."""
        import pandas as pd
        return pd.DataFrame(list(self._records))

    @property
    def adapter_dir(self) -> Path | None:
        """The saved adapter (peft format + llamalab_finetune.json); None for method='full' or before the end."""
        p = self.output_dir / ADAPTER
        return p if self.method != "full" and (p / MANIFEST).is_file() else None

    @property
    def model_dir(self) -> Path | None:
        """The saved full checkpoint of method='full' (a normal folder load() accepts)."""
        p = self.output_dir / MODEL
        return p if self.method == "full" and (p / MANIFEST).is_file() else None

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / CHECKPOINT

    @property
    def estimated_bytes(self) -> int:
        """The estimator's bytes for this run without the Python runtime (weights + training state + activations)."""
        return self.estimate.total_bytes - self.estimate.breakdown["overhead"]

    @property
    def estimate_error_pct(self) -> float | None:
        if not self.measured_peak_bytes:
            return None
        return 100.0 * (self.estimated_bytes - self.measured_peak_bytes) / self.measured_peak_bytes

    @property
    def done(self) -> bool:
        return self.status in ("done", "stopped", "failed")

    def on_step(self, fn) -> None:
        """Call `fn(record: dict)` after every step (from the run's driver thread; keep it quick)."""
        self._listeners.append(fn)

    def wait(self, timeout: float | None = None) -> FinetuneRun:
        """Block until the run ends (Ctrl-C stops it at the next step boundary); raise its error if it failed."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.2 if timeout is None else min(0.2, timeout))
                if timeout is not None:
                    timeout -= 0.2
                    if timeout <= 0:
                        break
        except KeyboardInterrupt:
            self.stop()
            self._thread.join()
            raise
        if self.status == "failed" and self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        """End the run after the step in progress, from any thread; a checkpoint is saved for resume()."""
        self._stop.set()

    def resume(self, steps: int | None = None) -> FinetuneRun:
        """Continue a stopped run from its checkpoint on disk (optionally to a new total of `steps`)."""
        if not self.done:
            raise LlamalabError("This run is still going.", "Call stop() and wait() before resume().")
        if not (self.checkpoint_dir / "trainer_state.pt").is_file():
            raise LlamalabError(f"No checkpoint in {self.checkpoint_dir}.", "Only a stopped run can resume.")
        if steps is not None:
            self.total_steps = steps
        self.restore()
        self.start()
        return self

    def restore(self) -> None:
        """Load the checkpoint's weights, optimizer, schedule, step and history into this run (not started)."""
        step, records = torch_thread.run(self._trainer.load_checkpoint, self.checkpoint_dir)
        self.step, self._records[:] = step, records
        self._elapsed_before = records[-1]["elapsed_s"] if records else 0.0

    def summary(self) -> dict:
        """The run's facts in one record (the metrics vocabulary's names)."""
        h = self._records
        return {"method": self.method, "model": self.model.card.name, "scheme": self.model.scheme.name,
                "trainable_params": self.trainable_params, "total_params": self.total_params,
                "steps": self.step, "final_loss": h[-1]["loss"] if h else None,
                "final_eval_loss": _last(h, "eval_loss"),
                "step_s": _median([r["step_s"] for r in h]),
                "tokens_per_s": _median([r["tokens_per_s"] for r in h]),
                "peak_train_bytes": self.measured_peak_bytes, "estimated_train_bytes": self.estimated_bytes,
                "train_estimate_error_pct": self.estimate_error_pct, "status": self.status}

    def merge(self, **kwargs):
        """Merge the adapter into the base and check the result (see llamalab.finetune.merge.merge)."""
        from .merge import merge
        return merge(self, **kwargs)

    def __repr__(self) -> str:
        loss = f", loss {self._records[-1]['loss']:.3f}" if self._records else ""
        return (f"FinetuneRun({self.method} on {self.model.card.name}/{self.model.scheme.name}, step {self.step}/"
                f"{self.total_steps}{loss}, {self.status}, trainable {self.trainable_params:,} of "
                f"{self.total_params:,})")

    # ------------------------------------------------------------------ the driver thread
    def start(self) -> None:
        self._stop.clear()
        self.status, self.error = "running", None
        self._thread = threading.Thread(target=self._drive, name="llamalab-finetune", daemon=True)
        self._thread.start()

    def _drive(self) -> None:
        four_bit = []
        try:
            four_bit = torch_thread.run(kbit.hold_unpacked, self._trainer.model, self.model.path)
            release_freed_memory()
            self._base_rss = _rss() - (self.model.weights_memory_bytes or 0)
            _reset_peak_rss()
            self._t_start = time.perf_counter()
            while self.step < self.total_steps and not self._stop.is_set():
                self._one_step()
            if self._stop.is_set() and self.step < self.total_steps:
                torch_thread.run(self._trainer.save_checkpoint, self.checkpoint_dir, self.step, self._records)
                (self.checkpoint_dir / MANIFEST).write_text(json.dumps(self.manifest(), indent=1))
                self.status = "stopped"
            else:
                torch_thread.run(self._finish)
                (self.checkpoint_dir / MANIFEST).unlink(missing_ok=True)    # nothing left to resume
                self.status = "done"
        except BaseException as e:   # noqa: BLE001 - handed to wait()
            self.error, self.status = e, "failed"
        finally:
            self._measure_peak()
            torch_thread.run(kbit.release, four_bit)
            self.model.model.eval() if self.model.model is not None else None

    def _one_step(self) -> None:
        rec = torch_thread.run(self._trainer.step, self.step)
        self.step += 1
        s = self.settings
        if s.eval_every and (self.step % s.eval_every == 0 or self.step == self.total_steps):
            rec["eval_loss"] = torch_thread.run(self._trainer.eval_loss)
        rec = {"step": self.step, **rec, "elapsed_s": self._elapsed_before + time.perf_counter() - self._t_start,
               **_memory(self.model.device)}
        self._records.append(rec)
        for fn in list(self._listeners):
            fn(rec)

    def _measure_peak(self) -> None:
        peak = max([_peak_rss() or 0] + [r.get("rss_bytes", 0) for r in self._records])
        if self.model.device.startswith("cuda"):
            import torch
            peak = torch.cuda.max_memory_allocated()
            self.measured_peak_bytes = peak
        elif peak:
            self.measured_peak_bytes = max(0, peak - self._base_rss)

    def _finish(self) -> None:
        """Save the adapter (or the full model) with the base's fingerprint and the run's settings."""
        out = self.output_dir / (MODEL if self.method == "full" else ADAPTER)
        out.mkdir(parents=True, exist_ok=True)
        self._trainer.save_weights(out)
        self.model.model.eval()
        (out / MANIFEST).write_text(json.dumps(self.manifest(), indent=1))

    def manifest(self) -> dict:
        return {"kind": "full" if self.method == "full" else "adapter", "method": self.method,
                "base_model": self.model.card.name, "base_scheme": self.model.scheme.name,
                "base_path": self.model.path, "base_fingerprint": self.base_fingerprint,
                "settings": self.settings.to_dict(), "data": self.data_name, "steps": self.step,
                "trainable_params": self.trainable_params, "total_params": self.total_params,
                "final_loss": self._records[-1]["loss"] if self._records else None,
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _rss() -> int:
    import psutil
    return psutil.Process(os.getpid()).memory_info().rss


def _memory(device: str) -> dict:
    out = {"rss_bytes": _rss()}
    if device.startswith("cuda"):
        import torch
        out.update(cuda_allocated_bytes=torch.cuda.memory_allocated(), cuda_reserved_bytes=torch.cuda.memory_reserved())
    return out


def _median(xs):
    xs = sorted(x for x in xs if x == x)
    return xs[len(xs) // 2] if xs else None


def _last(records, key):
    vals = [r[key] for r in records if key in r and r[key] == r[key]]
    return vals[-1] if vals else None


def default_output(card_name: str, method: str) -> Path:
    return cache_dir() / "finetune" / f"{card_name}-{method}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def steps_for(settings: FinetuneSettings, train_rows: int) -> int:
    if settings.epochs is None:
        return settings.steps
    per_step = settings.batch * settings.grad_accum
    return max(1, math.ceil(settings.epochs * train_rows / per_step))


def card_name(model) -> str:
    return model.card.name if isinstance(model, LoadedModel) else catalog.card(model).name


def saved_checkpoint(folder) -> tuple[Path, dict]:
    """(the run's output folder, its checkpoint manifest) for a stopped run's folder or its checkpoint/."""
    p = Path(folder)
    out = p.parent if p.name == CHECKPOINT else p
    manifest = out / CHECKPOINT / MANIFEST
    if not (out / CHECKPOINT / "trainer_state.pt").is_file() or not manifest.is_file():
        raise InvalidSetting(f"resume={folder}: no stopped run's checkpoint there.",
                             "Pass the output folder of a run that was stopped (run.output_dir); a finished "
                             "run has nothing left to resume: start a new one from its adapter instead.")
    return out, json.loads(manifest.read_text())


def check_output(output) -> Path | None:
    if output is None:
        return None
    p = Path(output)
    if p.exists() and not p.is_dir():
        raise InvalidSetting(f"output={output} is a file.", "Pass a folder (it is created if missing).")
    return p
