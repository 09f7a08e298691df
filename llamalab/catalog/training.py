"""Which fine-tuning method trains over which base scheme on which device (training_methods.toml): data that
both the runtime's capability table and the finetune package read, so neither imports the other."""
from __future__ import annotations

from functools import cache

from . import _load

DEVICES = ("cpu", "cuda")


@cache
def methods() -> dict:
    """The table's rows: key → {help, schemes, method?, cpu: {ok, note|reason}, cuda: {...}}."""
    return _load("training_methods.toml")


def cell(method: str, scheme: str, device: str) -> tuple[bool, str]:
    """(trains here, reason or note) for one method × base scheme × device."""
    kind = device.split(":")[0]
    for key, row in methods().items():
        if row.get("method", key) == method and scheme in row["schemes"]:
            c = row.get(kind, {})
            return bool(c.get("ok")), c.get("reason") or c.get("note", "")
    return False, _why_not(method, scheme)


def method_names() -> list[str]:
    return list(dict.fromkeys(row.get("method", key) for key, row in methods().items()))


def trains(scheme: str, device: str) -> tuple[list[str], str]:
    """(methods that train over `scheme` on `device`, why none does — '' when some do)."""
    cells = {m: cell(m, scheme, device) for m in method_names()}
    ok = [m for m, (yes, _) in cells.items() if yes]
    return ok, "" if ok else cells["lora"][1]


def _why_not(method: str, scheme: str) -> str:
    bases = sorted({s for k, r in methods().items() if r.get("method", k) == method for s in r["schemes"]})
    if scheme.startswith(("q", "f16")):
        return (f"{scheme} is a llama.cpp GGUF format, which torch cannot train; fine-tune a float or nf4 base "
                f"and export the result to GGUF")
    return f"the kit trains {method} over {', '.join(bases)} only"
