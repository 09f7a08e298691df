"""Export a model (a catalog name, the embedded model, or a merged LoRA folder) as a GGUF file for
llama.cpp / Ollama, and check the file against its source instead of assuming it is right.

The conversion is llama.cpp's own (`convert_hf_to_gguf.py`, then `llama_model_quantize`), through
`llamalab.convert_gguf` — nothing is converted here. The check loads both and compares, on the
same text and prompts: next-token distributions (mean KL(source ‖ GGUF), top-1 agreement) and the
greedy answers (identical or not, and for how many characters).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..core import validate
from ..core.errors import InvalidSetting
from ..measure.quality import divergence
from ..runtime import load
from ..runtime.files.gguf import SIDECAR, WRITABLE, convert

CHECK_PROMPTS = (
    "What is the capital of France?",
    "Name three primary colours.",
    "Write one sentence about the sea.",
)


@dataclass(frozen=True)
class ExportCheck:
    """How close the exported GGUF is to its source, measured (not assumed)."""

    source_scheme: str
    kl_mean: float  # nats/token, KL(source ‖ GGUF) over `tokens` positions of held-out text
    top1_agreement: float  # share of those positions where both pick the same next token
    tokens: int
    greedy_identical: float  # share of prompts whose greedy answers are identical
    answers: tuple[dict, ...] = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "source_scheme": self.source_scheme,
            "kl_mean": self.kl_mean,
            "top1_agreement": self.top1_agreement,
            "tokens": self.tokens,
            "greedy_identical": self.greedy_identical,
        }


@dataclass(frozen=True)
class Export:
    path: Path
    outtype: str
    bytes: int
    source: str
    check: ExportCheck | None = None


def export_gguf(
    model_or_merged_dir="default",
    outtype: str = "q4_k_m",
    output: str | os.PathLike | None = None,
    check: bool = True,
    source_scheme: str = "bf16",
    prompts=CHECK_PROMPTS,
    max_new_tokens: int = 24,
    tokens: int = 256,
    window: int = 128,
    verbose: bool = True,
) -> Export:
    """Write `model_or_merged_dir` as a GGUF of `outtype` (q8_0, f16, q6_k, q5_k_m, q4_k_m, q4_1,
    q4_0), copy it to `output` (a file or a folder; default: keep it in the kit's cache) and, with
    `check`, load the file and its source (under `source_scheme`) and compare them
    (see ExportCheck)."""
    outtype = validate.choice("outtype", str(outtype).lower(), WRITABLE)
    validate.flag("check", check)
    made = Path(convert(model_or_merged_dir, outtype, verbose=verbose))
    path = _place(made, output, outtype)
    result = Export(
        path=path, outtype=outtype, bytes=path.stat().st_size, source=str(model_or_merged_dir)
    )
    if not check:
        return result
    return Export(
        path=path,
        outtype=outtype,
        bytes=result.bytes,
        source=result.source,
        check=check_export(
            model_or_merged_dir, path, source_scheme, prompts, max_new_tokens, tokens, window
        ),
    )


def _place(made: Path, output, outtype: str) -> Path:
    if output is None:
        return made
    target = Path(output).expanduser()
    if target.suffix != ".gguf":  # a folder (made if missing)
        if target.exists() and not target.is_dir():
            raise InvalidSetting(
                f"output={str(output)!r} is a file but not a .gguf one.",
                f"Pass a folder or a name such as 'model-{outtype}.gguf'.",
            )
        target.mkdir(parents=True, exist_ok=True)
        target = target / made.name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    shutil.copyfile(made, tmp)
    os.replace(tmp, target)
    sidecar = Path(str(made) + SIDECAR)  # where its tokenizer is: lets the kit load the copy too
    if sidecar.is_file():
        shutil.copyfile(sidecar, str(target) + SIDECAR)
    return target


def check_export(
    source,
    gguf: Path,
    source_scheme: str = "bf16",
    prompts=CHECK_PROMPTS,
    max_new_tokens: int = 24,
    tokens: int = 256,
    window: int = 128,
) -> ExportCheck:
    """Load the source and the GGUF, compare distributions (KL, top-1) and greedy
    answers; unload both."""
    ref = load(source, source_scheme, device="cpu")
    try:
        exported = load(str(gguf), "gguf", device="cpu")
        try:
            d = divergence(exported, ref, tokens=tokens, window=window)
            answers = []
            for p in prompts:
                a = ref.generate(p, max_new_tokens=max_new_tokens).text
                b = exported.generate(p, max_new_tokens=max_new_tokens).text
                answers.append({"prompt": p, "source": a, "gguf": b, "identical": a == b})
        finally:
            exported.unload()
    finally:
        ref.unload()
    same = sum(a["identical"] for a in answers) / len(answers) if answers else float("nan")
    return ExportCheck(
        source_scheme=source_scheme,
        kl_mean=d.kl_mean,
        top1_agreement=d.top1_agreement,
        tokens=d.tokens,
        greedy_identical=same,
        answers=tuple(answers),
    )
