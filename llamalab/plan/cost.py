"""Open vs closed: what a month of tokens costs through an API and self-hosted.

Pure arithmetic, no torch. An API bills every token; a self-hosted model bills GPU-hours whether
they are busy or not. The estimator says how many GPUs one replica of the model needs; its
throughput (the bandwidth roofline × an efficiency, or your own measured figure) and the share of
hours it is busy say how many tokens a replica serves per month. Prices are data
(catalog/prices.toml), each with its date and source, and every one can be overridden.

    r = llamalab.cost_at_scale("llama-3.1-70b", "int8", gpu="h100-80gb", api="gpt-4o")
    r.break_even_tokens_per_month, r.to_frame()
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from ..catalog import gpu as catalog_gpu
from ..catalog.prices import ApiPrice, GpuHourPrice, prices
from ..core import validate
from ..core.errors import InvalidSetting
from ..core.settings import setting, with_changes
from .estimator import estimate, roofline

HOURS_PER_MONTH = 730  # 365 × 24 / 12
DEFAULT_VOLUMES = tuple(
    10 ** (k / 4) for k in range(24, 49)
)  # 1M … 1T tokens a month, 4 points a decade


@dataclass(frozen=True)
class CostAssumptions:
    """What `cost_at_scale` assumes beyond the model, scheme, GPU and API;
    every field can be overridden."""

    context: int = setting(4096, "Tokens per sequence the replica is sized for (prompt + reply).")
    batch: int = setting(
        8, "Sequences served at once by one replica: more share the bytes read per step."
    )
    gpu_usd_per_hour: float | None = setting(
        None, "Price of one GPU-hour; None: the price list's on-demand price."
    )
    api_input_usd_per_mtok: float | None = setting(
        None, "The API's price per million input tokens; None: the price list's."
    )
    api_output_usd_per_mtok: float | None = setting(
        None, "The API's price per million output tokens; None: the price list's."
    )
    input_share: float = setting(
        0.75, "Share of the month's tokens that are prompt (input) tokens."
    )
    decode_tokens_per_s: float | None = setting(
        None,
        "Output tokens/s of one replica, all sequences together; None: "
        "the bandwidth roofline × efficiency.",
    )
    prefill_tokens_per_s: float | None = setting(
        None, "Input tokens/s of one replica; None: decode × prefill_speedup."
    )
    efficiency: float = setting(
        0.5, "Share of the bandwidth roofline a real server reaches (0.5–0.8 is typical)."
    )
    prefill_speedup: float = setting(
        10.0,
        "How much faster prompt tokens go than generated ones (they are processed in parallel).",
    )
    utilization: float = setting(
        0.5, "Share of the paid hours a replica spends serving at that speed."
    )
    hours_per_month: float = setting(
        HOURS_PER_MONTH, "Hours billed per month (730 = 365 × 24 / 12)."
    )

    def __post_init__(self):
        validate.integer("context", self.context, 1)
        validate.integer("batch", self.batch, 1)
        validate.number("input_share", self.input_share, lo=0, hi=1)
        validate.number("utilization", self.utilization, lo=1e-6, hi=1)
        validate.number("efficiency", self.efficiency, lo=1e-6, hi=1)
        validate.number("prefill_speedup", self.prefill_speedup, lo=1e-9)
        validate.number("hours_per_month", self.hours_per_month, lo=1, hi=744)
        for name in ("gpu_usd_per_hour", "api_input_usd_per_mtok", "api_output_usd_per_mtok"):
            if getattr(self, name) is not None:
                validate.number(name, getattr(self, name), lo=0)
        for name in ("decode_tokens_per_s", "prefill_tokens_per_s"):
            if getattr(self, name) is not None:
                validate.number(name, getattr(self, name), lo=1e-9)


@dataclass(frozen=True)
class CostAtScale:
    """Monthly cost of the same token volumes through an API and self-hosted,
    and where they cross."""

    model: str
    scheme: str
    gpu: str
    gpus_per_replica: int  # from the estimator: the model's peak memory split over this GPU
    gpu_usd_per_hour: float
    api: str
    api_input_usd_per_mtok: float
    api_output_usd_per_mtok: float
    input_share: float  # share of the month's tokens that are prompt (input) tokens
    decode_tokens_per_s: float  # output tokens/s of one replica (all sequences of a batch together)
    prefill_tokens_per_s: float  # input tokens/s of one replica
    utilization: float  # share of the paid hours a replica spends serving at that speed
    hours_per_month: float
    tokens_per_month: tuple[float, ...]
    api_usd: tuple[float, ...]
    self_hosted_usd: tuple[float, ...]
    replicas: tuple[int, ...]
    break_even_tokens_per_month: (
        float | None
    )  # None: self-hosting never gets cheaper at these prices
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
        """Tokens one replica serves in a month at this mix, speed and utilization."""
        s = self.input_share
        seconds_per_token = s / self.prefill_tokens_per_s + (1 - s) / self.decode_tokens_per_s
        return self.utilization * self.hours_per_month * 3600 / seconds_per_token

    def to_frame(self):
        """One row per monthly volume: tokens, API cost, self-hosted cost, replicas,
        the cheaper side."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "tokens_per_month": self.tokens_per_month,
                "api_usd": self.api_usd,
                "self_hosted_usd": self.self_hosted_usd,
                "replicas": self.replicas,
            }
        )
        df["cheaper"] = [
            "api" if a < h else "self-hosted" for a, h in zip(self.api_usd, self.self_hosted_usd)
        ]
        return df

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        be = self.break_even_tokens_per_month
        where = (
            f"self-hosting is cheaper above {be / 1e6:,.0f} M tokens/month"
            if be is not None
            else (
                "self-hosting never gets cheaper at these prices (a busy replica costs more "
                "per token than the API)"
            )
        )
        return (
            f"{self.model} · {self.scheme} on {self.gpus_per_replica}× "
            f"{self.gpu} (${self.gpu_usd_per_hour:.2f}/GPU-h) vs {self.api} "
            f"(${self.api_input_usd_per_mtok:.2f} in / ${self.api_output_usd_per_mtok:.2f} "
            f"out per M): {where}."
        )


def cost_at_scale(
    model="llama-3.1-70b",
    scheme="int8",
    gpu="h100-80gb",
    api="gpt-4o",
    assumptions: CostAssumptions | None = None,
    *,
    tokens_per_month=None,
    prices_file=None,
    **overrides,
) -> CostAtScale:
    """Monthly cost curves, API vs self-hosted, and `break_even_tokens_per_month`.

    Self-hosted: replicas × GPUs per replica (the estimator: peak memory at `context`×`batch` split
    over `gpu`) × $/GPU-hour × hours, replicas = enough to serve the volume. `assumptions`
    (a CostAssumptions) and/or its fields as keywords say the rest; measured speeds replace the
    roofline's.
    """
    a = with_changes(assumptions or CostAssumptions(), **overrides)
    apis, hours = prices(prices_file)
    api_price = _api(apis, api, a.api_input_usd_per_mtok, a.api_output_usd_per_mtok)
    dev = catalog_gpu(gpu)
    hour = _gpu_hour(hours, dev.name, a.gpu_usd_per_hour)
    e = estimate(model, scheme, a.context, a.batch, device="cuda")
    n_gpus = e.devices_needed(dev)
    notes = [
        f"{n_gpus} × {dev.name} per replica: the estimate's peak ({e.peak_bytes / 1e9:.1f} "
        f"GB at context {a.context}, batch {a.batch}) split evenly over "
        f"{dev.memory_bytes / 1e9:.0f} GB GPUs."
    ]
    decode = a.decode_tokens_per_s
    if decode is None:
        roof = roofline(model, scheme, dev, a.context, a.batch)["tokens_per_s_total"]
        decode = roof * n_gpus * a.efficiency
        notes.append(
            f"Decode speed: bandwidth roofline {roof:,.0f} tokens/s at batch {a.batch} × {n_gpus} "
            f"GPU(s) (tensor parallel splits the bytes read) × efficiency {a.efficiency:g}."
        )
    prefill = a.prefill_tokens_per_s or decode * a.prefill_speedup
    r = CostAtScale(
        e.model,
        e.scheme,
        dev.name,
        n_gpus,
        hour.usd_per_hour,
        api_price.name,
        api_price.input_usd_per_mtok,
        api_price.output_usd_per_mtok,
        a.input_share,
        decode,
        prefill,
        a.utilization,
        a.hours_per_month,
        _volumes(tokens_per_month),
        (),
        (),
        (),
        None,
        sources={
            "api": f"{api_price.source} ({api_price.date})",
            "gpu_hour": f"{hour.provider}: {hour.source} ({hour.date})",
        },
        notes=tuple(notes),
    )
    return _with_curves(r)


def _with_curves(r: CostAtScale) -> CostAtScale:
    cap, per_replica, p = r.replica_tokens_per_month, r.replica_usd_per_month, r.api_usd_per_token
    replicas = tuple(max(1, math.ceil(v / cap)) for v in r.tokens_per_month)
    api = tuple(v * p for v in r.tokens_per_month)
    hosted = tuple(n * per_replica for n in replicas)
    # one replica costs the same at any volume up to its capacity; beyond it,
    # each token costs per_replica/cap
    break_even = per_replica / p if p > 0 and per_replica / p <= cap else None
    return replace(
        r,
        api_usd=api,
        self_hosted_usd=hosted,
        replicas=replicas,
        break_even_tokens_per_month=break_even,
    )


def _api(apis: dict, name, input_price, output_price) -> ApiPrice:
    if name in apis:
        base = apis[name]
    elif input_price is not None and output_price is not None:
        base = ApiPrice(
            validate.text("api", name), name, 0.0, 0.0, "given by the caller", "given by the caller"
        )
    else:
        raise InvalidSetting(
            f"api={name!r} has no price in the price list.",
            f"Use one of: {', '.join(apis)}; or pass api_input_usd_per_mtok and "
            "api_output_usd_per_mtok for another API.",
        )
    given = input_price is not None or output_price is not None
    return ApiPrice(
        base.name,
        base.display,
        validate.number("api_input_usd_per_mtok", input_price, lo=0)
        if input_price is not None
        else base.input_usd_per_mtok,
        validate.number("api_output_usd_per_mtok", output_price, lo=0)
        if output_price is not None
        else base.output_usd_per_mtok,
        "given by the caller" if given else base.date,
        "given by the caller" if given else base.source,
    )


def _gpu_hour(hours: dict, gpu: str, price) -> GpuHourPrice:
    if price is not None:
        return GpuHourPrice(
            gpu,
            validate.number("gpu_usd_per_hour", price, lo=0),
            "given by the caller",
            "given by the caller",
            "given by the caller",
        )
    if gpu not in hours:
        raise InvalidSetting(
            f"No GPU-hour price for {gpu} in the price list.",
            f"Pass gpu_usd_per_hour=…, or use one of: {', '.join(hours)}.",
        )
    return hours[gpu]


def _volumes(tokens_per_month) -> tuple[float, ...]:
    if tokens_per_month is None:
        return DEFAULT_VOLUMES
    if isinstance(tokens_per_month, (int, float)):
        tokens_per_month = [tokens_per_month]
    values = tuple(validate.number("tokens_per_month", v, lo=0) for v in tokens_per_month)
    if not values:
        raise InvalidSetting(
            "tokens_per_month is empty.", "Pass one volume or a list, e.g. [1e6, 1e9]."
        )
    return values
