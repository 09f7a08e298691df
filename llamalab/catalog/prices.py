"""List prices for the open-vs-closed cost arithmetic (prices.toml),
each with its date and source."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import HERE

PRICES = HERE / "prices.toml"


@dataclass(frozen=True)
class ApiPrice:
    """One API's list price per million tokens, with when and where it was read."""

    name: str
    display: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    date: str
    source: str


@dataclass(frozen=True)
class GpuHourPrice:
    """One GPU for one hour, on demand, with when and where the price was read."""

    gpu: str
    usd_per_hour: float
    provider: str
    date: str
    source: str


def prices(path=None) -> tuple[dict[str, ApiPrice], dict[str, GpuHourPrice]]:
    """The API and GPU-hour prices of `path` (default: the kit's prices.toml), by name."""
    data = tomllib.loads(Path(path or PRICES).read_text())
    apis = {a["name"]: ApiPrice(**a) for a in data.get("api", [])}
    hours = {g["gpu"]: GpuHourPrice(**g) for g in data.get("gpu_hour", [])}
    return apis, hours
