"""The torch side of one fine-tuning run: the model being trained (the base, or the peft wrapper
around it), its optimizer and schedule, the batches, one optimizer step, the eval loss, checkpoints.
Every method runs on the one torch thread (the run submits them one step at a time)."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog.training import Method
from . import data as D
from .settings import FinetuneSettings


@dataclass
class Trainer:
    """The torch-side state of a run (model, optimizer, batches)."""

    engine: object  # the loaded model's engine (it declares Adapters: model, tokenizer, peft_model)
    method: Method
    settings: FinetuneSettings
    train: list
    eval: list
    total_steps: int
    optimizer: object = None
    scheduler: object = None
    params: list = field(default_factory=list)

    @property
    def model(self):
        """What trains: the peft wrapper around the base (adapter methods),
        or the base itself (full)."""
        return self.engine.peft_model if self.method.adapters else self.engine.model

    @property
    def pad_id(self) -> int:
        tok = self.engine.tokenizer
        return tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)

    def micro_batch(self, k: int):
        """The k-th micro-batch of the run: a seeded shuffle per epoch, so a resumed run
        sees the same order."""
        b = self.settings.batch
        per_epoch = max(1, len(self.train) // b)
        epoch, i = divmod(k, per_epoch)
        order = list(range(len(self.train)))
        random.Random(self.settings.seed * 1000 + epoch).shuffle(order)
        return collate(
            [self.train[j] for j in order[i * b : (i + 1) * b]], self.pad_id, self.model.device
        )

    def step(self, step: int) -> dict:
        """One optimizer step (grad_accum micro-batches): loss, grad norm, lr,
        tokens and seconds."""
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
        norm = torch.nn.utils.clip_grad_norm_(
            self.params, s.max_grad_norm if s.max_grad_norm > 0 else float("inf")
        )
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        return {
            "loss": loss_sum,
            "learning_rate": lr,
            "grad_norm": float(norm),
            "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"),
            "step_s": seconds,
        }

    def eval_loss(self) -> float:
        """Mean loss over the held-out examples (token-weighted), dropout off."""
        import torch

        if not self.eval:
            return float("nan")
        model, b, total, n = self.model, self.settings.batch, 0.0, 0
        model.eval()
        with torch.no_grad():
            for i in range(0, len(self.eval), b):
                chunk = self.eval[i : i + b]
                k = sum(e.trained_tokens for e in chunk)
                total += float(model(**collate(chunk, self.pad_id, model.device)).loss) * k
                n += k
        return total / n

    def save_checkpoint(self, folder: Path, step: int, history: list) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        self.save_weights(folder)
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": step,
            },
            folder / "trainer_state.pt",
        )
        (folder / "history.json").write_text(json.dumps(history))

    def load_checkpoint(self, folder: Path) -> tuple[int, list]:
        import torch

        state = torch.load(folder / "trainer_state.pt", weights_only=False)
        self.load_weights(folder)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        return state["step"], json.loads((folder / "history.json").read_text())

    def save_weights(self, folder: Path) -> None:
        """The adapter (peft format), or the whole model and its tokenizer (full fine-tuning)."""
        self.model.save_pretrained(str(folder))
        if not self.method.adapters:
            self.engine.tokenizer.save_pretrained(str(folder))

    def load_weights(self, folder: Path) -> None:
        from safetensors.torch import load_file

        if self.method.adapters:
            from peft import set_peft_model_state_dict

            set_peft_model_state_dict(
                self.model, load_file(str(folder / "adapter_model.safetensors"))
            )
            return
        state = {}
        for f in sorted(folder.glob("*.safetensors")):
            state.update(load_file(str(f)))
        self.model.load_state_dict(state, strict=False)


def collate(examples, pad_id: int, device) -> dict:
    """Right-padded input_ids / attention_mask / labels tensors [batch, longest row] (padding never
    counts in the loss)."""
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
    return {
        "input_ids": ids.to(device),
        "attention_mask": mask.to(device),
        "labels": labels.to(device),
    }
