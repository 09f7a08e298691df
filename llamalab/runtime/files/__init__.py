"""Where a model's files come from and what the kit writes: the embedded model, local folders, the
Hub cache (source), the kit's own quantized checkpoints (store), GGUF conversion and tokenizers
(gguf)."""

from __future__ import annotations

from pathlib import Path


def model_files(model="default", scheme="bf16") -> Path:
    """Where the weights of `model` under `scheme` are on this machine: a checkpoint folder, or a
    .gguf file (written with llama.cpp's tools first if that type is not on disk yet). The embedded
    model is converted on first use; a GPTQ/AWQ scheme needs `llamalab.quantize()` first
    (ModelNotCached says so)."""
    from ... import catalog
    from .gguf import convert
    from .source import NeedsConversion, resolve

    found = resolve(model, catalog.card(model), catalog.scheme(scheme, model))
    return Path(
        convert(found.model, found.outtype) if isinstance(found, NeedsConversion) else found
    )
