"""Adapters on a loaded model: list the saved ones, add several to one base, switch, unload.
Generation with an adapter is the same `generate()` / `stream()` call and returns the same Generation."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InvalidSetting, LlamalabError
from ..paths import cache_dir
from ..runtime import torch_thread
from ..runtime.loaded import LoadedModel
from .run import ADAPTER, MANIFEST


def list_adapters(root=None):
    """Every adapter saved under `root` (default: the kit's fine-tuning folder), newest first."""
    import pandas as pd
    root = Path(root) if root is not None else cache_dir() / "finetune"
    rows = []
    for manifest in sorted(root.glob(f"*/{ADAPTER}/{MANIFEST}")) + sorted(root.glob(f"{ADAPTER}/{MANIFEST}")):
        m = json.loads(manifest.read_text())
        rows.append({"adapter_dir": str(manifest.parent), "method": m["method"], "base_model": m["base_model"],
                     "base_scheme": m["base_scheme"], "steps": m["steps"], "r": m["settings"]["r"],
                     "target_modules": m["settings"]["target_modules"], "final_loss": m["final_loss"],
                     "saved_at": m["saved_at"]})
    return pd.DataFrame(rows).sort_values("saved_at", ascending=False, ignore_index=True) if rows else pd.DataFrame(rows)


def adapters(loaded: LoadedModel) -> dict:
    """{"names": [...], "active": name or None} of the adapters on `loaded`."""
    pm = _peft(loaded, required=False)
    if pm is None:
        return {"names": [], "active": None}
    return {"names": list(pm.peft_config), "active": pm.active_adapter}


def add_adapter(loaded: LoadedModel, folder, name: str) -> None:
    """Load another saved adapter onto the same base under `name` (it does not become active)."""
    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise InvalidSetting(f"{folder} holds no peft adapter.", "Pass a folder a run saved (run.adapter_dir).")
    pm = _peft(loaded, required=False)
    if pm is None:
        def attach():
            from peft import PeftModel
            loaded.engine.peft_model = PeftModel.from_pretrained(loaded.engine.model, str(folder), adapter_name=name)
            loaded.engine.model.eval()
        torch_thread.run(attach)
        return
    if name in pm.peft_config:
        raise InvalidSetting(f"An adapter called {name!r} is already loaded.", "Pick another name.")
    torch_thread.run(pm.load_adapter, str(folder), adapter_name=name)
    loaded.engine.model.eval()


def use_adapter(loaded: LoadedModel, name: str) -> None:
    """Make `name` the adapter that generate() uses."""
    pm = _peft(loaded)
    if name not in pm.peft_config:
        raise InvalidSetting(f"No adapter {name!r} on this model.", f"Loaded: {', '.join(pm.peft_config)}.")
    torch_thread.run(pm.set_adapter, name)
    loaded.engine.model.eval()


def unload_adapter(loaded: LoadedModel) -> None:
    """Remove every adapter: the model is the plain base again (nothing merged)."""
    pm = _peft(loaded)
    loaded.engine.model = torch_thread.run(pm.unload)
    loaded.engine.peft_model = None


def _peft(loaded: LoadedModel, required: bool = True):
    pm = getattr(loaded.engine, "peft_model", None)
    if pm is None and required:
        raise LlamalabError("This model carries no adapter.",
                            "Load one with llamalab.load(model, scheme, adapter=folder) or add_adapter().")
    return pm
