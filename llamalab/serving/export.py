"""Export a model (a catalog name, the embedded model, or a merged LoRA folder) as a GGUF file for
llama.cpp / Ollama, and check the file against its source instead of assuming it is right.

The conversion is llama.cpp's own (`convert_hf_to_gguf.py`, then `llama_model_quantize`), through
`llamalab.convert_gguf` — nothing is converted here. The check loads both and compares, on the
same text and prompts: next-token distributions (mean KL(source ‖ GGUF), top-1 agreement) and the
greedy answers (identical or not, and for how many characters). First, and refusing the file with
ExportMismatch when they differ, its chat template and stop tokens against the source's
(template_check.check_template).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..core import validate
from ..core.errors import InvalidSetting
from ..runtime import load
from ..runtime.files.gguf import SIDECAR, WRITABLE, convert
from .adapter_export import AdapterCheck, export_adapter, gguf_vs, is_adapter_dir
from .template_check import TemplateCheck, check_template

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
    # the chat template renders and stop tokens compared with the source's (all equal, or the
    # export was refused with ExportMismatch)
    template: TemplateCheck | None = None

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
    check: ExportCheck | AdapterCheck | None = None
    base: Path | None = None  # for an adapter: the base GGUF it is served on


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
    adapter_outtype: str = "f16",
) -> Export:
    """Write `model_or_merged_dir` as a GGUF of `outtype` (q8_0, f16, q6_k, q5_k_m, q4_k_m, q4_1,
    q4_0), copy it to `output` (a file or a folder; default: keep it in the kit's cache) and, with
    `check`, load the file and its source (under `source_scheme`) and compare them
    (see ExportCheck).

    A peft adapter folder (`run.adapter_dir`) stays an adapter: its base becomes a GGUF of
    `outtype`, the adapter a GGUF LoRA of `adapter_outtype` (f16, q8_0) beside it (`Export.base`,
    `Export.path`), and the check compares them with the in-process base + adapter (AdapterCheck;
    use source_scheme='fp32', what adapters train over)."""
    if is_adapter_dir(model_or_merged_dir):
        base, path, adapter_check = export_adapter(
            model_or_merged_dir, outtype, adapter_outtype, output, check, source_scheme,
            prompts, max_new_tokens, tokens, window, verbose,
        )  # fmt: skip
        return Export(path, adapter_outtype, path.stat().st_size, str(model_or_merged_dir),
                      adapter_check, base)  # fmt: skip
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
    """Check the GGUF's chat template and stop tokens against the source's (ExportMismatch names a
    difference; the file stays where it is), then load the source and the GGUF, compare
    distributions (KL, top-1) and greedy answers; unload both."""
    template = check_template(gguf, source)
    ref = load(source, source_scheme, device="cpu")
    try:
        d, answers, same = gguf_vs(ref, gguf, prompts, max_new_tokens, tokens, window)
    finally:
        ref.unload()
    return ExportCheck(
        source_scheme=source_scheme,
        kl_mean=d.kl_mean,
        top1_agreement=d.top1_agreement,
        tokens=d.tokens,
        greedy_identical=same,
        answers=answers,
        template=template,
    )
