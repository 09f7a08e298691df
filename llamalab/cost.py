"""Open vs closed: what a month of tokens costs through an API and self-hosted (issue 10).

Pure arithmetic, no torch. An API bills every token; a self-hosted model bills GPU-hours whether they are
busy or not. The estimator says how many GPUs one replica of the model needs; its throughput (the bandwidth
roofline × an efficiency, or your own measured figure) and the share of hours it is busy say how many
tokens a replica serves per month. Prices are data (catalog/prices.toml), each with its date and source,
and every one can be overridden.

    r = llamalab.cost_at_scale("llama-3.1-70b", "int8", gpu="h100-80gb", api="gpt-4o")
    r.break_even_tokens_per_month, r.to_frame()
"""
from __future__ import annotations

import math
try:
    import tomllib
except ModuleNotFoundError:     # Python 3.10
    import tomli as tomllib
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from . import validate
from .catalog import HERE as CATALOG_DIR
from .catalog import gpu as catalog_gpu
from .errors import InvalidSetting
from .estimate import estimate, roofline

PRICES = CATALOG_DIR / "prices.toml"
HOURS_PER_MONTH = 730           # 365 × 24 / 12
DEFAULT_VOLUMES = tuple(10 ** (k / 4) for k in range(24, 49))   # 1M … 1T tokens a month, 4 points a decade


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


@cache
def _read(path: str) -> dict:
    return tomllib.loads(Path(path).read_text())


def prices(path=None) -> tuple[dict[str, ApiPrice], dict[str, GpuHourPrice]]:
    """The API and GPU-hour prices of `path` (default: the kit's prices.toml), by name."""
    data = _read(str(path or PRICES))
    apis = {a["name"]: ApiPrice(**a) for a in data.get("api", [])}
    hours = {g["gpu"]: GpuHourPrice(**g) for g in data.get("gpu_hour", [])}
    return apis, hours


@dataclass(frozen=True)
class CostAtScale:
    """Monthly cost of the same token volumes through an API and self-hosted, and where they cross."""
    model: str
    scheme: str
    gpu: str
    gpus_per_replica: int           # from the estimator: the model's peak memory split over this GPU
    gpu_usd_per_hour: float
    api: str
    api_input_usd_per_mtok: float
    api_output_usd_per_mtok: float
    input_share: float              # share of the month's tokens that are prompt (input) tokens
    decode_tokens_per_s: float      # output tokens/s of one replica (all sequences of a batch together)
    prefill_tokens_per_s: float     # input tokens/s of one replica
    utilisation: float              # share of the paid hours a replica spends serving at that speed
    hours_per_month: float
    tokens_per_month: tuple[float, ...]
    api_usd: tuple[float, ...]
    self_hosted_usd: tuple[float, ...]
    replicas: tuple[int, ...]
    break_even_tokens_per_month: float | None   # None: self-hosting never gets cheaper at these prices
    sources: dict = field(default_factory=dict, hash=False)
    notes: tuple[str, ...] = ()

    @property
    def api_usd_per_token(self) -> float:
        s = self.input_share
        return (s * self.api_input_usd_per_mtok + (1 - s) * self.api_output_usd_per_mtok) / 1e6

    @property
    def replica_usd_per_month(self) -> float:
        return self.gpus_per_replica * self.gpu_usd_per_hour * self.hours_per_month

    @property
    def replica_tokens_per_month(self) -> float:
        """Tokens one replica serves in a month at this mix, speed and utilisation."""
        s = self.input_share
        seconds_per_token = s / self.prefill_tokens_per_s + (1 - s) / self.decode_tokens_per_s
        return self.utilisation * self.hours_per_month * 3600 / seconds_per_token

    def to_frame(self):
        """One row per monthly volume: tokens, API cost, self-hosted cost, replicas, the cheaper side."""
        import pandas as pd
        df = pd.DataFrame({"tokens_per_month": self.tokens_per_month, "api_usd": self.api_usd,
                           "self_hosted_usd": self.self_hosted_usd, "replicas": self.replicas})
        df["cheaper"] = ["api" if a < h else "self-hosted" for a, h in zip(self.api_usd, self.self_hosted_usd)]
        return df

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        be = self.break_even_tokens_per_month
        where = (f"self-hosting is cheaper above {be / 1e6:,.0f} M tokens/month" if be is not None else
                 "self-hosting never gets cheaper at these prices (a busy replica costs more per token than the API)")
        return (f"{self.model} · {self.scheme} on {self.gpus_per_replica}× {self.gpu} (${self.gpu_usd_per_hour:.2f}/GPU-h) "
                f"vs {self.api} (${self.api_input_usd_per_mtok:.2f} in / ${self.api_output_usd_per_mtok:.2f} out per M): "
                f"{where}.")


def cost_at_scale(model="llama-3.1-70b", scheme="int8", gpu="h100-80gb", api="gpt-4o", *,
                  context: int = 4096, batch: int = 8, gpu_usd_per_hour: float | None = None,
                  api_input_usd_per_mtok: float | None = None, api_output_usd_per_mtok: float | None = None,
                  input_share: float = 0.75, decode_tokens_per_s: float | None = None,
                  prefill_tokens_per_s: float | None = None, efficiency: float = 0.5,
                  prefill_speedup: float = 10.0, utilisation: float = 0.5,
                  hours_per_month: float = HOURS_PER_MONTH, tokens_per_month=None, prices_file=None) -> CostAtScale:
    """Monthly cost curves, API vs self-hosted, and `break_even_tokens_per_month`.

    Self-hosted: replicas × GPUs per replica (the estimator: peak memory at `context`×`batch` split over
    `gpu`) × $/GPU-hour × hours, replicas = enough to serve the volume. A replica's decode speed defaults
    to the bandwidth roofline at `batch` sequences × `efficiency` (real servers: 0.5–0.8 of it); prefill to
    `prefill_speedup` × decode (prompt tokens are processed in parallel). Pass measured figures instead.
    """
    apis, hours = prices(prices_file)
    _check_shares(input_share, utilisation, efficiency)
    api_price = _api(apis, api, api_input_usd_per_mtok, api_output_usd_per_mtok)
    dev = catalog_gpu(gpu)
    hour = _gpu_hour(hours, dev.name, gpu_usd_per_hour)
    e = estimate(model, scheme, context, batch)
    n_gpus = e.devices_needed(dev)
    notes = [f"{n_gpus} × {dev.name} per replica: the estimate's peak ({e.peak_bytes / 1e9:.1f} GB at context "
             f"{context}, batch {batch}) split evenly over {dev.memory_bytes / 1e9:.0f} GB GPUs."]
    if decode_tokens_per_s is None:
        roof = roofline(model, scheme, dev, context, batch)["tokens_per_s_total"]
        decode_tokens_per_s = roof * n_gpus * efficiency
        notes.append(f"Decode speed: bandwidth roofline {roof:,.0f} tokens/s at batch {batch} × {n_gpus} GPU(s) "
                     f"(tensor parallel splits the bytes read) × efficiency {efficiency:g}.")
    decode = validate.number("decode_tokens_per_s", decode_tokens_per_s, lo=1e-9)
    prefill = validate.number("prefill_tokens_per_s", prefill_tokens_per_s if prefill_tokens_per_s is not None
                              else decode * validate.number("prefill_speedup", prefill_speedup, lo=1e-9), lo=1e-9)
    volumes = _volumes(tokens_per_month)
    r = CostAtScale(e.model, e.scheme, dev.name, n_gpus, hour.usd_per_hour, api_price.name,
                    api_price.input_usd_per_mtok, api_price.output_usd_per_mtok, input_share, decode, prefill,
                    utilisation, validate.number("hours_per_month", hours_per_month, lo=1, hi=744),
                    volumes, (), (), (), None,
                    sources={"api": f"{api_price.source} ({api_price.date})",
                             "gpu_hour": f"{hour.provider}: {hour.source} ({hour.date})"}, notes=tuple(notes))
    return _with_curves(r)


def _with_curves(r: CostAtScale) -> CostAtScale:
    from dataclasses import replace
    cap, per_replica, p = r.replica_tokens_per_month, r.replica_usd_per_month, r.api_usd_per_token
    replicas = tuple(max(1, math.ceil(v / cap)) for v in r.tokens_per_month)
    api = tuple(v * p for v in r.tokens_per_month)
    hosted = tuple(n * per_replica for n in replicas)
    # one replica costs the same at any volume up to its capacity; beyond it, each token costs per_replica/cap
    break_even = per_replica / p if p > 0 and per_replica / p <= cap else None
    return replace(r, api_usd=api, self_hosted_usd=hosted, replicas=replicas, break_even_tokens_per_month=break_even)


def _api(apis: dict, name, input_price, output_price) -> ApiPrice:
    if name in apis:
        base = apis[name]
    elif input_price is not None and output_price is not None:
        base = ApiPrice(validate.text("api", name), name, 0.0, 0.0, "given by the caller", "given by the caller")
    else:
        raise InvalidSetting(f"api={name!r} has no price in the price list.",
                             f"Use one of: {', '.join(apis)}; or pass api_input_usd_per_mtok and "
                             "api_output_usd_per_mtok for another API.")
    given = input_price is not None or output_price is not None
    return ApiPrice(base.name, base.display,
                    validate.number("api_input_usd_per_mtok", input_price, lo=0) if input_price is not None
                    else base.input_usd_per_mtok,
                    validate.number("api_output_usd_per_mtok", output_price, lo=0) if output_price is not None
                    else base.output_usd_per_mtok,
                    "given by the caller" if given else base.date, "given by the caller" if given else base.source)


def _gpu_hour(hours: dict, gpu: str, price) -> GpuHourPrice:
    if price is not None:
        return GpuHourPrice(gpu, validate.number("gpu_usd_per_hour", price, lo=0), "given by the caller",
                            "given by the caller", "given by the caller")
    if gpu not in hours:
        raise InvalidSetting(f"No GPU-hour price for {gpu} in the price list.",
                             f"Pass gpu_usd_per_hour=…, or use one of: {', '.join(hours)}.")
    return hours[gpu]


def _check_shares(input_share, utilisation, efficiency) -> None:
    validate.number("input_share", input_share, lo=0, hi=1)
    validate.number("utilisation", utilisation, lo=1e-6, hi=1)
    validate.number("efficiency", efficiency, lo=1e-6, hi=1)


def _volumes(tokens_per_month) -> tuple[float, ...]:
    if tokens_per_month is None:
        return DEFAULT_VOLUMES
    if isinstance(tokens_per_month, (int, float)):
        tokens_per_month = [tokens_per_month]
    values = tuple(validate.number("tokens_per_month", v, lo=0) for v in tokens_per_month)
    if not values:
        raise InvalidSetting("tokens_per_month is empty.", "Pass one volume or a list, e.g. [1e6, 1e9].")
    return values
