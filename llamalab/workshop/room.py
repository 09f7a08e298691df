"""The room's shared results: each learner's measurements appended as JSON lines to a shared folder,
read back as one table ("the room's machines"). One file per machine and user, so appends never
interleave."""

from __future__ import annotations

import getpass
import json
import os
import platform
import socket
import time
from pathlib import Path

from ..core import validate
from ..core.errors import InvalidSetting

ENV = "LLAMALAB_ROOM_DIR"
FIELDS = (
    "model",
    "scheme",
    "device",
    "prompt_tokens",
    "new_tokens",
    "ttft_s",
    "decode_tokens_per_s",
    "peak_memory_bytes",
    "peak_memory_kind",
)


def room_dir(folder=None) -> Path | None:
    """The shared results folder: `folder`, else $LLAMALAB_ROOM_DIR,
    else None (no room configured)."""
    folder = folder or os.environ.get(ENV)
    return Path(folder) if folder else None


def record(generation, folder=None, *, machine: str | None = None, **extra) -> dict:
    """Append one measured generation (a Generation or its dict) to the room's folder;
    return the record."""
    where = room_dir(folder)
    if where is None:
        raise InvalidSetting(
            "No shared results folder is configured.",
            f"Pass folder=… or set {ENV} to a folder every learner can write (a network share).",
        )
    d = generation.to_dict() if hasattr(generation, "to_dict") else dict(generation)
    rec = {k: d.get(k) for k in FIELDS}
    rec.update(extra)
    rec["machine"] = validate.text("machine", machine) if machine else _machine()
    rec["cpu"] = platform.processor() or platform.machine()
    rec["time"] = time.time()
    where.mkdir(parents=True, exist_ok=True)
    with open(where / f"{_safe(rec['machine'])}.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")  # one short write per record: appends stay whole
    return rec


def room_table(folder=None):
    """Every record of the room as a DataFrame (newest last); empty when nothing was shared yet."""
    import pandas as pd

    where = room_dir(folder)
    rows = []
    if where is not None and where.is_dir():
        for f in sorted(where.glob("*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line being written right now
    df = pd.DataFrame(rows, columns=[*FIELDS, "machine", "cpu", "time"] if not rows else None)
    return df.sort_values("time", ignore_index=True) if len(df) else df


def _machine() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "user"
    return f"{socket.gethostname()}-{user}"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "machine"
