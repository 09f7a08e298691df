"""Safe merge: fold the adapter into the base weights, then check the merged model against base +
adapter on held-out prompts (next-token KL, top-1 agreement, greedy output agreement) before
keeping it.

peft's own `safe_merge=True` only looks for NaNs. Known pitfall: merging into a quantized base
quantizes the sum again (nf4: most of a LoRA update rounds away, and the check says by how much); a
GPTQ base cannot merge at all (peft refuses): keep the adapter separate, or train over a float
base."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ..catalog import training
from ..core import torch_thread
from ..core.errors import LlamalabError
from ..engines.base import Adapters, require
from ..runtime import load
from ..runtime.loaded import LoadedModel
from . import kbit

MAX_KL, MIN_TOP1, MIN_GREEDY = 1e-3, 0.99, 1.0


@dataclass(frozen=True)
class MergeReport:
    """How the merged model agrees with base + adapter on the same held-out prompts."""

    kl_mean: float  # mean KL(base+adapter ‖ merged) of next-token distributions, nats/token
    top1_agreement: float  # share of positions with the same most likely token
    greedy_agreement: float  # share of prompts whose greedy continuation is identical
    prompts: int
    positions: int
    passed: bool
    base_scheme: str
    merged_dir: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"Merge check {verdict}: KL {self.kl_mean:.2e} nats/token, "
            f"top-1 {100 * self.top1_agreement:.1f} %, greedy {100 * self.greedy_agreement:.0f} % "
            f"of {self.prompts} prompts ({self.positions} positions)"
            + (f"; saved to {self.merged_dir}" if self.merged_dir else "")
            + (f". {self.note}" if self.note else "")
        )


class MergeCheckFailed(LlamalabError):
    def __init__(self, report: MergeReport):
        self.report = report
        super().__init__(
            str(report),
            "The merged weights were not kept: the model still runs base + adapter. "
            "Use the adapter unmerged, or pass on_fail='warn' to keep the merge anyway.",
        )


def merge(
    base,
    adapter=None,
    prompts=None,
    *,
    output=None,
    save: bool = True,
    on_fail: str = "raise",
    max_new_tokens: int = 12,
) -> MergeReport:
    """Merge `adapter` into `base` and check it. `base` is a FinetuneRun, a LoadedModel carrying an
    adapter, or a model name/folder (then `adapter` is the adapter folder). The merged model is
    saved as a normal checkpoint (`load(report.merged_dir, "fp32")`) unless save=False."""
    loaded, method, out = _base_with_adapter(base, adapter, output)
    _check_mergeable(loaded, method)
    engine = loaded.engine
    prompts = prompts or default_prompts()
    four_bit = torch_thread.run(
        kbit.hold_unpacked, engine.model, loaded.path
    )  # peft cannot merge packed layers
    try:
        reference = [_trace(loaded, p, max_new_tokens) for p in prompts]
        engine.merge_adapters()
        merged = [
            _trace(loaded, p, max_new_tokens, ids=r["ids"]) for p, r in zip(prompts, reference)
        ]
        report = _compare(reference, merged, loaded.scheme)
        if not report.passed and on_fail == "raise":
            engine.unmerge_adapters()
            raise MergeCheckFailed(report)
    finally:
        kbit.release(four_bit)
    if not report.passed:
        warnings.warn(str(report), stacklevel=2)
    engine.remove_adapters()  # the weights hold the merge; drop the LoRA layers
    if save:
        target = Path(out)
        torch_thread.run(_save, loaded, target)
        report = MergeReport(**{**report.to_dict(), "merged_dir": str(target)})
    return report


def default_prompts(n: int = 8) -> list:
    """The first `n` held-out prompts of the bundled dataset (never trained on)."""
    from .data import conversations

    return [c[:-1] for c in conversations("house-format-heldout")[::7][:n]]


def _base_with_adapter(base, adapter, output) -> tuple[LoadedModel, str, Path]:
    """(the model carrying the adapter, the method that trained it, where the merge goes)."""
    from .run import FinetuneRun

    if isinstance(base, FinetuneRun):
        if not base.done or not base.method.adapters:
            raise LlamalabError(
                "Only a finished LoRA/QLoRA run has an adapter to merge.",
                "Wait for the run (run.wait()); a full fine-tune is already "
                "merged (run.model_dir).",
            )
        return base.model, base.method.name, Path(output or base.output_dir / "merged")
    if isinstance(base, LoadedModel):
        if not require(base.engine, Adapters, "carry an adapter").adapter_names()[0]:
            raise LlamalabError(
                "This model carries no adapter.", "load(model, scheme, adapter=folder) first."
            )
        return base, "lora", Path(output or Path(base.adapter or base.path).parent / "merged")
    if adapter is None:
        raise LlamalabError(
            "merge(base, adapter) needs the adapter folder.", "Pass e.g. run.adapter_dir."
        )
    import json

    manifest_file = Path(adapter) / "llamalab_finetune.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else {}
    loaded = load(base, manifest.get("base_scheme", "fp32"), adapter=adapter)
    return loaded, manifest.get("method", "lora"), Path(output or Path(adapter).parent / "merged")


def _check_mergeable(loaded: LoadedModel, method: str) -> None:
    ok, why = training.merges(method, loaded.scheme_name)
    if not ok:
        raise LlamalabError(
            f"A {loaded.scheme_name} base cannot merge an adapter: {why}.",
            "Keep the adapter separate (load(model, scheme, adapter=...)), or train over "
            "fp32/bf16, merge there, then quantize the merged checkpoint.",
        )


def _trace(loaded: LoadedModel, prompt, max_new_tokens: int, ids=None) -> dict:
    """Greedy continuation and next-token log-probs along the reference sequence `ids`
    (else its own)."""
    import numpy as np

    g = loaded.generate(prompt, max_new_tokens=max_new_tokens)
    prompt_ids = loaded.engine.encode(prompt)
    seq = ids if ids is not None else list(prompt_ids) + list(g.token_ids)
    logits = loaded.engine.logits(seq)[len(prompt_ids) - 1 : -1]
    logits = logits - logits.max(axis=-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    return {"ids": seq, "greedy": tuple(g.token_ids), "logp": logp}


def _compare(ref: list, got: list, scheme) -> MergeReport:
    import numpy as np

    kls, top1, n = [], 0, 0
    for r, g in zip(ref, got):
        p = np.exp(r["logp"])
        kls.append(float((p * (r["logp"] - g["logp"])).sum(axis=-1).sum()))
        top1 += int((r["logp"].argmax(-1) == g["logp"].argmax(-1)).sum())
        n += len(r["logp"])
    kl = max(0.0, sum(kls) / max(n, 1))
    greedy = sum(r["greedy"] == g["greedy"] for r, g in zip(ref, got)) / len(ref)
    ok = (
        kl <= MAX_KL and top1 / max(n, 1) >= MIN_TOP1 and greedy >= MIN_GREEDY and math.isfinite(kl)
    )
    note = (
        "Merging into a 4-bit base quantizes the sum again, and most of a LoRA update is smaller "
        "than half a 4-bit step: it rounds away (an untrained adapter merges within KL 0.003 nats "
        "here; a trained one can lose much of its effect: the figures above say how much)."
        if scheme.quantized_at == "load"
        else ""
    )
    return MergeReport(kl, top1 / max(n, 1), greedy, len(ref), n, ok, scheme.name, note=note)


def _save(loaded: LoadedModel, target: Path) -> None:
    """A normal checkpoint (weights, config, tokenizer with its chat template) that
    load() accepts."""
    from ..core.paths import atomic_dir

    with atomic_dir(target, replace=True) as tmp:
        loaded.engine.model.save_pretrained(str(tmp))
        loaded.engine.tokenizer.save_pretrained(str(tmp))
