"""The model-selection grid, computed: for each model on each machine, the scheme `choose_scheme`
picks (highest fidelity that fits and decodes at a reading pace), its speed by the speed law, and
the longest context it allows. The table a learner reads, and the heatmap `plots` draws."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import catalog as cat
from ..core.errors import InvalidSetting
from .choice import choose_scheme
from .estimator import device_for, max_context

if TYPE_CHECKING:
    import pandas as pd


def selection_grid(models, machines: dict, context: int = 4096, candidates=None) -> pd.DataFrame:
    """One row per model × machine. `machines`: {label: gpu} or {label: (gpu, device)}, a gpu being
    anything `best_scheme` takes (a catalog name, '8x h100-80gb', bytes, 'this'). `candidates`:
    the schemes to choose among, one list for all, or {device kind: list} (e.g. GPU schemes for
    'cuda', GGUF ones for 'cpu'); None: every scheme the machine runs."""
    import pandas as pd

    if not isinstance(machines, dict) or not machines:
        raise InvalidSetting(
            f"machines={machines!r} is not a dict of machines.",
            "Pass e.g. {'one A100': 'a100-80gb', 'laptop': (25_600_000_000, 'cpu')}.",
        )
    rows = []
    for label, spec in machines.items():
        gpu, device = spec if isinstance(spec, tuple) else (spec, "auto")
        device = device_for(gpu, device)
        pool = candidates.get(device.split(":")[0]) if isinstance(candidates, dict) else candidates
        for model in models:
            rows.append(_cell(model, label, gpu, device, context, pool))
    return pd.DataFrame(rows)


def _cell(model, machine: str, gpu, device: str, context: int, pool) -> dict:
    picked = choose_scheme(model, gpu, context, candidates=pool, device=device)
    row = next((r for r in picked.rows if r["scheme"] == picked.scheme), None)
    return {
        "model": cat.card(model).name,
        "machine": machine,
        "device": device,
        "scheme": picked.scheme,
        "bits": cat.scheme(picked.scheme).bits if picked.scheme else 0,
        "tokens_per_s": row["tokens_per_s"] if row else None,
        "max_context": max_context(model, picked.scheme, gpu, device=device)
        if picked.scheme
        else 0,
        "why": picked.why,
    }
