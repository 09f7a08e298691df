"""The fine-tuning methods and which one trains over which base scheme on which device
(training_methods.toml): data that the runtime's capability table, the estimator's callers and the
train package all read, so what differs by method is never a string comparison in code. Also the
published fine-tuning memory peaks the estimator is checked against (training_peaks.toml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from ..core.errors import InvalidSetting, SchemeUnavailable
from . import read, scheme

if TYPE_CHECKING:
    import pandas as pd

DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class Method:
    """One fine-tuning method: what it trains, over which default base,
    counted how by the estimator."""

    name: str
    help: str
    trains: str  # "adapters" (the base stays frozen) or "all" (every weight)
    base: str  # the default base scheme
    estimate: str  # the estimator's mode for it
    lr: float  # finetune_compare()'s learning rate for it
    dora: bool = False  # peft's use_dora
    freeze: bool = False  # freeze every base parameter before peft wraps it (a k-bit base)

    @property
    def adapters(self) -> bool:
        """True when the method trains adapters over a frozen base (its result is
        an adapter folder)."""
        return self.trains == "adapters"


@cache
def _methods() -> dict[str, Method]:
    return {m["name"]: Method(**m) for m in read("training_methods.toml")["method"]}


def method_names() -> list[str]:
    return list(_methods())


def method(name: str) -> Method:
    """The method called `name` ('lora', 'qlora', 'full', 'dora');
    InvalidSetting lists them otherwise."""
    if name not in _methods():
        raise InvalidSetting(
            f"method={name!r} is not a fine-tuning method.",
            f"Use one of: {', '.join(map(repr, _methods()))}.",
        )
    return _methods()[name]


def _cells() -> list[dict]:
    return read("training_methods.toml")["cell"]


def _row(method_name: str, scheme_name: str) -> dict | None:
    return next(
        (c for c in _cells() if c["method"] == method_name and scheme_name in c["schemes"]), None
    )


def cell(method_name: str, scheme_name: str, device: str) -> tuple[bool, str]:
    """(trains here, reason or note) for one method × base scheme × device."""
    row = _row(method_name, scheme_name)
    if row is None:
        return False, _why_not(method_name, scheme_name)
    c = row.get(device.split(":")[0], {})
    return bool(c.get("ok")), c.get("reason") or c.get("note", "")


def merges(method_name: str, scheme_name: str) -> tuple[bool, str]:
    """(an adapter trained this way folds into its base, why not)."""
    row = _row(method_name, scheme_name) or {}
    return row.get("merges", True), row.get("merge_reason", "")


def trains(scheme_name: str, device: str) -> tuple[list[str], str]:
    """(methods that train over `scheme_name` on `device`, why none does — '' when some do)."""
    cells = {m: cell(m, scheme_name, device) for m in method_names()}
    ok = [m for m, (yes, _) in cells.items() if yes]
    return ok, "" if ok else cells["lora"][1]


def check(method_name: str, scheme_name: str, device: str) -> None:
    """Raise SchemeUnavailable naming why `method_name` cannot train over `scheme_name` on `device`,
    and where it can."""
    ok, reason = cell(method_name, scheme_name, device)
    if ok:
        return
    where = [d for d in DEVICES if cell(method_name, scheme_name, d)[0]]
    runs = f"; it runs on {' and '.join(where).upper()}" if where else ""
    raise SchemeUnavailable(
        scheme_name,
        device.split(":")[0],
        f"{method_name} training over {scheme_name}: {reason}{runs}",
        method(method_name).base,
    )


def table() -> pd.DataFrame:
    """Method × base scheme × device: available, reason (or note), help —
    the training capability table."""
    import pandas as pd

    rows = []
    for c in _cells():
        for s in c["schemes"]:
            for dev in DEVICES:
                ok, reason = cell(c["method"], s, dev)
                rows.append(
                    {
                        "method": c["method"],
                        "scheme": s,
                        "device": dev,
                        "available": ok,
                        "reason": reason,
                        "help": c.get("help") or method(c["method"]).help,
                    }
                )
    return pd.DataFrame(rows)


def _why_not(method_name: str, scheme_name: str) -> str:
    bases = sorted({s for c in _cells() if c["method"] == method_name for s in c["schemes"]})
    if scheme(scheme_name).is_gguf:
        return (
            f"{scheme_name} is a llama.cpp GGUF format, which torch cannot train; fine-tune a "
            "float or nf4 base and export the result to GGUF"
        )
    return f"the kit trains {method_name} over {', '.join(bases)} only"


@dataclass(frozen=True)
class Peak:
    """One published fine-tuning memory peak, the exact settings it was measured under and where it
    comes from (its [[peak]] row merged with its [[source]])."""

    id: str
    source: str
    title: str
    url: str
    commit: str
    gpu: str
    measures: str
    unit: str
    settings: str  # what every row of the source shares
    model: str
    method: str  # the estimator's mode
    scheme: str
    precision: str
    lora_as_published: str
    micro_batch: int
    seq_len: int
    seq_len_source: str
    checkpointing: bool
    lora_rank: int
    lora_alpha: int
    lora_targets: tuple[str, ...]
    published_gb: float
    tolerance: float = 0.20  # the |error| tests allow; above 0.20 only with a tolerance_note
    tolerance_note: str = ""
    note: str = ""

    @property
    def published_bytes(self) -> int:
        """The published figure in bytes (both sources print GB = 10**9 bytes)."""
        return round(self.published_gb * 1e9)


@cache
def peaks() -> tuple[Peak, ...]:
    """Every published peak in training_peaks.toml, in file order."""
    data = read("training_peaks.toml")
    sources = {s["key"]: s for s in data["source"]}
    rows = []
    for p in data["peak"]:
        s = {k: v for k, v in sources[p["source"]].items() if k != "key"}
        rows.append(Peak(**s, **{**p, "lora_targets": tuple(p["lora_targets"])}))
    return tuple(rows)
