"""Adapters on a loaded model: list the saved ones, add several to one base, switch, remove.
Generation with an adapter is the same `generate()` / `stream()` call and returns the same
Generation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import InvalidSetting
from ..core.paths import cache_dir
from ..engines.base import Adapters, require
from ..runtime.loaded import LoadedModel
from ..runtime.loader import attach_adapter
from .run import ADAPTER, MANIFEST

if TYPE_CHECKING:
    import pandas as pd

NO_ADAPTERS = (
    "Load a transformers scheme (fp32/bf16/fp16, nf4, gptq): its engine takes peft adapters."
)


def list_adapters(root=None) -> pd.DataFrame:
    """Every adapter saved under `root` (default: the kit's fine-tuning folder) as a
    DataFrame, newest first."""
    import pandas as pd

    root = Path(root) if root is not None else cache_dir() / "finetune"
    rows = []
    for manifest in sorted(root.glob(f"*/{ADAPTER}/{MANIFEST}")) + sorted(
        root.glob(f"{ADAPTER}/{MANIFEST}")
    ):
        m = json.loads(manifest.read_text())
        rows.append(
            {
                "adapter_dir": str(manifest.parent),
                "method": m["method"],
                "base_model": m["base_model"],
                "base_scheme": m["base_scheme"],
                "steps": m["steps"],
                "r": m["settings"]["r"],
                "target_modules": m["settings"]["target_modules"],
                "final_loss": m["final_loss"],
                "saved_at": m["saved_at"],
            }
        )
    df = pd.DataFrame(rows)
    return df.sort_values("saved_at", ascending=False, ignore_index=True) if rows else df


def adapters(loaded: LoadedModel) -> dict:
    """{"names": [...], "active": name or None} of the adapters on `loaded`."""
    names, active = require(
        loaded.engine, Adapters, "take peft adapters", NO_ADAPTERS
    ).adapter_names()
    return {"names": names, "active": active}


def add_adapter(loaded: LoadedModel, folder, name: str) -> None:
    """Load another saved adapter onto the same base under `name` (the first one becomes active)."""
    if not (Path(folder) / "adapter_config.json").is_file():
        raise InvalidSetting(
            f"{folder} holds no peft adapter.", "Pass a folder a run saved (run.adapter_dir)."
        )
    attach_adapter(loaded.engine, folder, loaded.path, name)


def use_adapter(loaded: LoadedModel, name: str) -> None:
    """Make `name` the adapter that generate() uses."""
    require(loaded.engine, Adapters, "take peft adapters", NO_ADAPTERS).use_adapter(name)


def remove_adapters(loaded: LoadedModel) -> None:
    """Remove every adapter: the model is the plain base again (nothing merged)."""
    require(loaded.engine, Adapters, "take peft adapters", NO_ADAPTERS).remove_adapters()
