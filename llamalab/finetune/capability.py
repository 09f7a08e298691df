"""Which method trains over which base scheme on which device (catalog/training_methods.toml), as a table and
as a check."""
from __future__ import annotations

from ..catalog.training import DEVICES, cell, methods
from ..errors import SchemeUnavailable


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
    for key, row in methods().items():
        for scheme in row["schemes"]:
            for dev in DEVICES:
                ok, reason = cell(row.get("method", key), scheme, dev)
                rows.append({"method": row.get("method", key), "scheme": scheme, "device": dev, "available": ok,
                             "reason": reason, "help": row["help"]})
    return pd.DataFrame(rows)
