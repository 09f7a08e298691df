"""Which method trains over which base scheme on which device (methods.toml), as a table and as a check."""
from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from ..errors import SchemeUnavailable

DEVICES = ("cpu", "cuda")


@cache
def _facts() -> dict:
    return tomllib.loads((Path(__file__).with_name("methods.toml")).read_text())


def cell(method: str, scheme: str, device: str) -> tuple[bool, str]:
    """(trains here, reason or note) for one method × base scheme × device."""
    kind = device.split(":")[0]
    for key, row in _facts().items():
        if row.get("method", key) == method and scheme in row["schemes"]:
            c = row.get(kind, {})
            return bool(c.get("ok")), c.get("reason") or c.get("note", "")
    return False, _why_not(method, scheme)


def _why_not(method: str, scheme: str) -> str:
    bases = sorted({s for k, r in _facts().items() if r.get("method", k) == method for s in r["schemes"]})
    if scheme.startswith(("q", "f16")) and scheme not in ("qlora",):
        return (f"{scheme} is a llama.cpp GGUF format, which torch cannot train; fine-tune a float or nf4 base "
                f"and export the result to GGUF")
    return f"the kit trains {method} over {', '.join(bases)} only"


def check(method: str, scheme: str, device: str) -> None:
    """Raise SchemeUnavailable naming why `method` cannot train over `scheme` on `device`, and where it can."""
    ok, reason = cell(method, scheme, device)
    if ok:
        return
    where = [d for d in DEVICES if cell(method, scheme, d)[0]]
    alt = {"qlora": "nf4", "full": "fp32"}.get(method, "fp32")
    runs = f"; it runs on {' and '.join(where).upper()}" if where else ""
    raise SchemeUnavailable(scheme, device.split(":")[0], f"{method} training over {scheme}: {reason}{runs}", alt)


def table():
    """Method × base scheme × device: available, reason (or note), help — the training capability table."""
    import pandas as pd
    rows = []
    for key, row in _facts().items():
        for scheme in row["schemes"]:
            for dev in DEVICES:
                ok, reason = cell(row.get("method", key), scheme, dev)
                rows.append({"method": row.get("method", key), "scheme": scheme, "device": dev, "available": ok,
                             "reason": reason, "help": row["help"]})
    return pd.DataFrame(rows)
