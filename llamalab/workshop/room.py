"""The room's shared results: each learner's measured generation, under a name they choose, read
back as one table ("the room's machines").

Where they go: with a room in use (`llamalab.use_room(...)` or LLAMALAB_ROOM) to the room's board
over HTTP with the room token (no shared folder: Binder, laptops); else as JSON lines into a shared
folder (`folder=` or LLAMALAB_ROOM_DIR), one file per machine and user so appends never interleave.
Neither path follows a symlink, and a malformed record is skipped and counted, never fatal.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from ..core import validate
from ..core.errors import InvalidSetting
from ..runtime.room import current_room, post_to_room, room_records
from .board import FIELDS
from .lines import RecordRejected, append_line, read_folder

ENV = "LLAMALAB_ROOM_DIR"
RESULT_FIELDS = tuple(FIELDS["results"])
MEASURED = (
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
FIELDS_FOLDER = (*RESULT_FIELDS, "machine", "time")  # a folder's records also say which machine


def room_dir(folder=None) -> Path | None:
    """The shared results folder: `folder`, else $LLAMALAB_ROOM_DIR,
    else None (no room configured)."""
    folder = folder or os.environ.get(ENV)
    return Path(folder) if folder else None


def destination(folder=None) -> str | None:
    """Where record() sends a result now, in words (None: nowhere is configured)."""
    room = None if folder else current_room()
    if room is not None:
        return f"the room's board at {room.board_url}"
    where = room_dir(folder)
    return f"the shared folder {where}" if where is not None else None


def record(
    generation,
    folder=None,
    *,
    name: str | None = None,
    device: str | None = None,
    bandwidth=None,
    machine: str | None = None,
    **extra,
) -> dict:
    """Share one measured generation (a Generation or its dict) with the room; return the record.
    `name`: what the room sees you as (default: host-user); `device`: where it ran ("cpu",
    "cuda"; a Generation does not say); `bandwidth`: your memory bandwidth, a
    `llamalab.memory_bandwidth()` result or bytes/s, for the room's roofline chart.
    Goes to `folder` if given, else to the room's board when a room is in use, else to
    LLAMALAB_ROOM_DIR."""
    d = generation.to_dict() if hasattr(generation, "to_dict") else dict(generation)
    rec = {k: d.get(k) for k in MEASURED}
    if device is not None:
        rec["device"] = validate.text("device", device)
    rec["name"] = validate.text("name", name) if name else _machine()
    rec["bandwidth_bytes_s"] = _bytes_per_s(bandwidth)
    rec["cpu"] = platform.processor() or platform.machine()
    rec.update(extra)
    room = None if folder else current_room()
    if room is not None:
        return post_to_room("results", _present(rec), room)
    return _append(rec, folder, machine)


def _append(rec: dict, folder, machine: str | None) -> dict:
    where = room_dir(folder)
    if where is None:
        raise InvalidSetting(
            "No room is in use and no shared results folder is configured.",
            "Use the room's line (llamalab.use_room('http://HOST:PORT#token=…') or LLAMALAB_ROOM), "
            f"or pass folder=… / set {ENV} to a folder every learner can write.",
        )
    rec["machine"] = validate.text("machine", machine) if machine else _machine()
    rec["time"] = time.time()
    append_line(where, f"{_safe(rec['machine'])}.jsonl", rec)
    return rec


def _present(rec: dict) -> dict:
    """The fields that hold a value: the board takes a missing field as unknown, not as null."""
    return {k: v for k, v in rec.items() if v is not None}


def _bytes_per_s(bandwidth) -> float | None:
    if bandwidth is None:
        return None
    value = getattr(bandwidth, "bytes_per_s", bandwidth)
    return validate.number("bandwidth", value, lo=1.0)


def room_table(folder=None):
    """Every result of the room as a DataFrame (oldest first; empty when nothing was shared yet),
    from `folder`, else the room's board when a room is in use, else LLAMALAB_ROOM_DIR.
    `df.attrs["skipped"]` lists the malformed records left out ({"file", "line", "why"})."""
    import pandas as pd

    room = None if folder else current_room()
    if room is not None:
        got = room_records("results", room)
        rows, skipped = list(got.records), list(got.skipped)
        columns = [*RESULT_FIELDS, "time"]
    else:
        rows, skipped = _read_folder(room_dir(folder))
        columns = list(FIELDS_FOLDER)
    df = pd.DataFrame(rows)  # every known column, posted or not (the board stores no nulls)
    df = df.reindex(columns=[*columns, *(c for c in df.columns if c not in columns)])
    df = df.sort_values("time", ignore_index=True) if len(df) else df
    df.attrs["skipped"] = skipped
    return df


def _read_folder(where: Path | None) -> tuple[list[dict], list[dict]]:
    if where is None:
        return [], []
    return read_folder(where, ".jsonl", _folder_record)


def _folder_record(rec: dict) -> dict:
    if not isinstance(rec.get("time"), int | float):
        raise RecordRejected("time is missing", "Records are written by record().")
    return rec


@dataclass(frozen=True)
class RoomSpread:
    """The room's decode speeds and bandwidths: median and range over learners (latest result of
    each name, measured on their own machine), how close they come to their roofline, and whether
    faster memory went with faster decoding among machines running the room's most posted model
    and scheme (Spearman's rank correlation; None under MIN_RANKED machines)."""

    learners: int
    decode_median: float
    decode_min: float
    decode_max: float
    bandwidth_median: float | None  # bytes/s; None when nobody measured it
    bandwidth_min: float | None
    bandwidth_max: float | None
    roofline_share_median: float | None
    ranked: str  # "model · scheme" the correlation is over
    ranked_n: int
    rank_correlation: float | None

    @property
    def lesson(self) -> str:
        """What the room's chart teaches, in the room's own numbers (and only what they show)."""
        text = (
            f"{self.learners} machines decode at {self.decode_min:.1f}–{self.decode_max:.1f} "
            f"tokens/s (median {self.decode_median:.1f})"
        )
        if self.bandwidth_min is None or self.bandwidth_max is None:
            return text + ". Measure your bandwidth and post again to place your machine."
        lo, hi = self.bandwidth_min / 1e9, self.bandwidth_max / 1e9
        text += f" and read memory at {lo:.1f}–{hi:.1f} GB/s."
        rho = self.rank_correlation
        if rho is None:
            text += (
                f" With {MIN_RANKED} or more machines on one model and scheme the chart shows "
                "whether faster memory decodes faster."
            )
        elif rho >= 0.5:
            text += (
                f" Among the {self.ranked_n} machines running {self.ranked}, faster memory "
                f"decoded faster (rank correlation {rho:.2f}): each token reads every weight once, "
                "so decode speed follows memory bandwidth."
            )
        else:
            text += (
                f" Among the {self.ranked_n} machines running {self.ranked}, bandwidth did not "
                f"order decode speed (rank correlation {rho:.2f}): busy machines, thread counts "
                "or power settings weighed in too — the roofline is a ceiling, not a prediction."
            )
        if self.roofline_share_median is not None:
            text += (
                f" The median machine reaches {self.roofline_share_median:.0%} of its roofline "
                "(bandwidth ÷ bytes read per token)."
            )
        return text


MIN_RANKED = 3  # machines on one model and scheme before a rank correlation says anything


def latest_local(df):
    """Each name's latest result per model and scheme, measured on the learner's own machine (a
    room-served result's speed is the server's, not theirs)."""
    if not len(df):
        return df
    local = df[df["device"].fillna("").astype(str) != "remote"]
    ordered = local.sort_values("time") if "time" in local.columns else local
    return ordered.drop_duplicates(["name", "model", "scheme"], keep="last").reset_index(drop=True)


def room_spread(df) -> RoomSpread | None:
    """The spread of `room_table()`'s results (latest_local); None when nobody shared yet."""
    from ..plots.room import with_roofline

    points = with_roofline(latest_local(df))
    if not len(points):
        return None
    speed, bw = points["decode_tokens_per_s"], points["bandwidth_bytes_s"].dropna()
    share = points["roofline_share"].dropna()
    ranked, n, rho = _rank_correlation(points)
    return RoomSpread(
        learners=int(points["name"].nunique()),
        decode_median=float(speed.median()),
        decode_min=float(speed.min()),
        decode_max=float(speed.max()),
        bandwidth_median=float(bw.median()) if len(bw) else None,
        bandwidth_min=float(bw.min()) if len(bw) else None,
        bandwidth_max=float(bw.max()) if len(bw) else None,
        roofline_share_median=float(share.median()) if len(share) else None,
        ranked=ranked,
        ranked_n=n,
        rank_correlation=rho,
    )


def _rank_correlation(points) -> tuple[str, int, float | None]:
    """Spearman's ρ of bandwidth and decode speed over the most posted model and scheme."""
    placed = points.dropna(subset=["bandwidth_bytes_s"])
    if not len(placed):
        return "", 0, None
    sizes = placed.groupby(["model", "scheme"], dropna=False).size()
    (model, scheme), n = sizes.idxmax(), int(sizes.max())
    group = placed[(placed["model"] == model) & (placed["scheme"].astype(str) == str(scheme))]
    ranks = group[["bandwidth_bytes_s", "decode_tokens_per_s"]].astype(float).rank()
    rho = ranks.corr().iloc[0, 1] if n >= MIN_RANKED else None
    return f"{model} · {scheme}", n, None if rho is None or rho != rho else float(rho)


def skipped_note(df) -> str:
    """ "n skipped (why)" for the malformed records room_table() left out; "" when none."""
    skipped = df.attrs.get("skipped", [])
    if not skipped:
        return ""
    whys = sorted({s["why"] for s in skipped})
    return f"{len(skipped)} skipped ({'; '.join(whys[:3])}{'; …' if len(whys) > 3 else ''})"


def _machine() -> str:
    try:
        user = getpass.getuser()
    except Exception:
        user = "user"
    return f"{socket.gethostname()}-{user}"[:40]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "machine"
