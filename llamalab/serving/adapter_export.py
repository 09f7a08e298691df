"""Export a LoRA adapter as an adapter (a GGUF LoRA file beside its base GGUF, for llama.cpp's
`--lora` and `/lora-adapters`) instead of merging it, and check the pair against the in-process
base + peft adapter: next-token KL and top-1 agreement on held-out text, and greedy answers.

The tolerance is the base's own: the GGUF base already differs from the in-process base by its
rounding (its KL, measured in the same run on the same positions); the adapter may add only a
little to that (ADAPTER_KL_SLACK × the base's KL + ADAPTER_KL_FLOOR), and top-1 agreement must
stay ≥ ADAPTER_MIN_TOP1."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..core import torch_thread
from ..core.paths import atomic_file
from ..measure.quality import divergence, greedy_answers
from ..runtime import load
from ..runtime.files.gguf import convert
from ..runtime.files.lora import base_folder, check_fits, convert_adapter
from ..runtime.loader import attach_adapter

ADAPTER_MIN_TOP1 = 0.9
ADAPTER_KL_SLACK, ADAPTER_KL_FLOOR = 2.0, 0.02  # nats/token


def kl_tolerance(base_kl: float) -> float:
    """The most KL (nats/token) base + adapter may show when the base alone shows `base_kl`."""
    return ADAPTER_KL_SLACK * base_kl + ADAPTER_KL_FLOOR


@dataclass(frozen=True)
class AdapterCheck:
    """The GGUF base + GGUF adapter against the in-process base + peft adapter (same positions)."""

    source_scheme: str
    kl_mean: float  # nats/token, KL(in-process base+adapter ‖ GGUF base+adapter)
    top1_agreement: float
    base_kl_mean: float  # the same, both without the adapter: the base GGUF's own rounding
    base_top1_agreement: float
    tokens: int
    greedy_identical: float  # share of prompts whose greedy answers (with the adapter) match
    answers: tuple = ()

    @property
    def kl_tolerance(self) -> float:
        return kl_tolerance(self.base_kl_mean)

    @property
    def passed(self) -> bool:
        return self.top1_agreement >= ADAPTER_MIN_TOP1 and self.kl_mean <= self.kl_tolerance

    def to_dict(self) -> dict:
        return {
            "source_scheme": self.source_scheme,
            "kl_mean": self.kl_mean,
            "top1_agreement": self.top1_agreement,
            "base_kl_mean": self.base_kl_mean,
            "base_top1_agreement": self.base_top1_agreement,
            "kl_tolerance": self.kl_tolerance,
            "tokens": self.tokens,
            "greedy_identical": self.greedy_identical,
            "passed": self.passed,
        }


def is_adapter_dir(path) -> bool:
    try:
        return (Path(path) / "adapter_config.json").is_file()
    except TypeError:
        return False


def adapter_gguf(adapter_dir, base_gguf: Path, outtype: str, output=None, verbose=True) -> Path:
    """The adapter as a GGUF named after its base and its own content, written once beside the base
    GGUF (or into `output`, a folder or a .gguf name)."""
    weights = sorted(Path(adapter_dir).glob("adapter_model.*"))
    digest = hashlib.sha256(b"".join(w.read_bytes() for w in weights)).hexdigest()[:10]
    name = f"{base_gguf.name.removesuffix('.gguf')}.lora-{digest}-{outtype}.gguf"
    target = base_gguf.parent / name
    if output is not None:
        out = Path(output).expanduser()
        target = out if out.suffix == ".gguf" else out / name
        target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file():
        made = convert_adapter(adapter_dir, outtype, verbose=verbose)
        with atomic_file(target) as tmp:
            shutil.move(str(made), tmp)
    check_fits(target, base_gguf)
    return target


def export_adapter(
    adapter_dir,
    base_outtype: str = "q8_0",
    outtype: str = "f16",
    output=None,
    check: bool = True,
    source_scheme: str = "fp32",
    prompts=(),
    max_new_tokens: int = 24,
    tokens: int = 256,
    window: int = 128,
    verbose: bool = True,
):
    """(the base GGUF of `base_outtype`, the adapter GGUF of `outtype` beside it, AdapterCheck or
    None)."""
    base_dir = base_folder(adapter_dir)
    base_gguf = Path(convert(str(base_dir), base_outtype, verbose=verbose))
    path = adapter_gguf(adapter_dir, base_gguf, outtype, output, verbose)
    if not check:
        return base_gguf, path, None
    return (
        base_gguf,
        path,
        check_adapter_export(
            adapter_dir,
            base_dir,
            base_gguf,
            path,
            source_scheme,
            prompts,
            max_new_tokens,
            tokens,
            window,
        ),
    )


def gguf_vs(ref, gguf, prompts, max_new_tokens, tokens, window, adapter=None):
    """(Divergence, greedy answers, share identical) of a GGUF (+ adapter), loaded for the
    measurement and unloaded after, against the loaded reference `ref`."""
    model = load(str(gguf), "gguf", device="cpu", adapter=str(adapter) if adapter else None)
    try:
        d = divergence(model, ref, tokens=tokens, window=window)
        return (d, *greedy_answers(ref, model, prompts, max_new_tokens))
    finally:
        model.unload()


def check_adapter_export(
    adapter_dir, base_dir, base_gguf, path, source_scheme, prompts, max_new_tokens, tokens, window
) -> AdapterCheck:
    """Measure the base pair first (its own rounding), then both with the adapter; unload all."""
    ref = load(str(base_dir), source_scheme, device="cpu")
    try:
        d_base, _, _ = gguf_vs(ref, base_gguf, (), 0, tokens, window)
        torch_thread.run(attach_adapter, ref.engine, adapter_dir, ref.path)
        d, answers, same = gguf_vs(ref, base_gguf, prompts, max_new_tokens, tokens, window, path)
    finally:
        ref.unload()
    return AdapterCheck(
        source_scheme=source_scheme,
        kl_mean=d.kl_mean,
        top1_agreement=d.top1_agreement,
        base_kl_mean=d_base.kl_mean,
        base_top1_agreement=d_base.top1_agreement,
        tokens=d.tokens,
        greedy_identical=same,
        answers=answers,
    )
