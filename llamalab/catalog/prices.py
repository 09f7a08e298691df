"""List prices for the open-vs-closed cost arithmetic (prices.toml),
each with its date and source."""

from __future__ import annotations

import functools
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from . import HERE

PRICES = HERE / "prices.toml"


@dataclass(frozen=True)
class ApiPrice:
    """One API's list price per million tokens, with when and where it was read. `model`: the
    catalog model it serves when it is an open model hosted by a provider ("" for a closed API)."""

    name: str
    display: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    date: str
    source: str
    model: str = ""

    def usd_per_token(self, input_share: float) -> float:
        """The blended price of one token when `input_share` of the tokens are prompt tokens."""
        s = input_share
        return (s * self.input_usd_per_mtok + (1 - s) * self.output_usd_per_mtok) / 1e6


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
    path = os.fspath(path or PRICES)
    stat = os.stat(path)  # a changed file is read again; an unchanged one is parsed once
    apis, hours = _parse(path, stat.st_mtime_ns, stat.st_size)
    return dict(apis), dict(hours)


def hosted_for(model: str, path=None) -> list[ApiPrice]:
    """The [[api]] entries that serve the open catalog model `model` (matched on their `model`)."""
    return [a for a in prices(path)[0].values() if a.model == model]


@functools.lru_cache(maxsize=8)  # the calculator asks on every change of a control
def _parse(
    path: str, mtime_ns: int, size: int
) -> tuple[dict[str, ApiPrice], dict[str, GpuHourPrice]]:
    data = tomllib.loads(Path(path).read_text())
    apis = {a["name"]: ApiPrice(**a) for a in data.get("api", [])}
    hours = {g["gpu"]: GpuHourPrice(**g) for g in data.get("gpu_hour", [])}
    return apis, hours
