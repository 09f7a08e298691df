"""Open vs closed: what a month of tokens costs self-hosted, through a closed API, and as the same
open model hosted by a provider.

Pure arithmetic, no torch. An API bills every token; a self-hosted model bills GPU-hours whether
they are busy or not, one replica at a time. The estimator says how many GPUs one replica needs
(`Estimate.devices_needed`, the count `deployment_plan` writes); its speed says how many tokens a
replica serves per month: decode from the bandwidth roofline (the batch shares one read of the
weights, each sequence adds its KV cache), prefill from compute (2 × active parameters FLOPs per
prompt token over the GPUs' dense FLOPS), each × an efficiency, or your measured figures. Replicas
step up: `ceil(volume / replica capacity)` of them are paid. So self-hosting can win at one volume
and lose again just past it, when the next replica is still mostly idle: the answer is a list of
volume ranges where each option is cheapest, and a break-even only where one crossing holds for
every volume above it. Prices are data (catalog/prices.toml), each with its date and source, and
every one can be overridden.

    r = llamalab.cost_at_scale("llama-3.1-70b", "int8", gpu="h100-80gb", api="gpt-4o")
    r.ranges, r.break_even_tokens_per_month, r.to_frame()
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

from ..catalog import GPU, ModelCard, card
from ..catalog import gpu as catalog_gpu
from ..catalog import scheme as catalog_scheme
from ..catalog.prices import ApiPrice, GpuHourPrice, prices
from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError
from ..core.settings import setting, with_changes
from .commands import engine_for
from .estimator import estimate
from .speed import roofline

HOURS_PER_MONTH = 730  # 365 × 24 / 12
DEFAULT_VOLUMES = tuple(
    10 ** (k / 4) for k in range(24, 49)
)  # 1M … 1T tokens a month, 4 points a decade
SELF, API, HOSTED = "self-hosted", "api", "hosted"
OPTIONS = (SELF, API, HOSTED)
MAX_STEPS = 1000  # replica steps examined one by one for an API window (see winning_ranges)


@dataclass(frozen=True)
class CostAssumptions:
    """What `cost_at_scale` assumes beyond the model, scheme, GPU and the priced options;
    every field can be overridden."""

    context: int = setting(4096, "Tokens per sequence the replica is sized for (prompt + reply).")
    batch: int = setting(
        8,
        "Sequences served at once by one replica: they share each read of the weights (decode "
        "gets faster) and each holds its KV cache (memory, so perhaps more GPUs).",
    )
    gpu_usd_per_hour: float | None = setting(
        None, "Price of one GPU-hour; None: the price list's on-demand price."
    )
    api_input_usd_per_mtok: float | None = setting(
        None, "The closed API's price per million input tokens; None: the price list's."
    )
    api_output_usd_per_mtok: float | None = setting(
        None, "The closed API's price per million output tokens; None: the price list's."
    )
    hosted_input_usd_per_mtok: float | None = setting(
        None,
        "The hosted open model's price per million input tokens; None: the price list's.",
    )
    hosted_output_usd_per_mtok: float | None = setting(
        None,
        "The hosted open model's price per million output tokens; None: the price list's.",
    )
    input_share: float = setting(
        0.75, "Share of the month's tokens that are prompt (input) tokens."
    )
    decode_tokens_per_s: float | None = setting(
        None,
        "Output tokens/s of one replica, all sequences together (measured); None: the bandwidth "
        "roofline × efficiency.",
    )
    prefill_tokens_per_s: float | None = setting(
        None,
        "Input (prompt) tokens/s of one replica (measured); None: the GPUs' dense FLOPS × "
        "prefill_efficiency ÷ (2 × active parameters).",
    )
    efficiency: float = setting(
        0.5,
        "Share of the bandwidth roofline decoding reaches (0.5–0.8 is typical of a real server).",
    )
    prefill_efficiency: float = setting(
        0.4,
        "Share of the GPUs' peak dense BF16 FLOPS a prompt pass reaches (MFU). 0.4 is a round, "
        "conservative figure: large prompt matmuls reach roughly 40–60 % of the datasheet peak, "
        "less once attention, tensor-parallel communication and scheduling are counted.",
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
        validate.number("prefill_efficiency", self.prefill_efficiency, lo=1e-6, hi=1)
        validate.number("hours_per_month", self.hours_per_month, lo=1, hi=744)
        for name in (
            "gpu_usd_per_hour",
            "api_input_usd_per_mtok",
            "api_output_usd_per_mtok",
            "hosted_input_usd_per_mtok",
            "hosted_output_usd_per_mtok",
        ):
            if getattr(self, name) is not None:
                validate.number(name, getattr(self, name), lo=0)
        for name in ("decode_tokens_per_s", "prefill_tokens_per_s"):
            if getattr(self, name) is not None:
                validate.number(name, getattr(self, name), lo=1e-9)


DEFAULT_ASSUMPTIONS = CostAssumptions()


class Range(NamedTuple):
    """Monthly volumes (start, end] where `option` is the cheapest (the first range includes 0;
    the last ends at infinity). At a tie the per-token option is named: it commits to nothing."""

    start: float
    end: float
    option: str


@dataclass(frozen=True)
class CostAtScale:
    """Monthly cost of the same token volumes self-hosted, through a closed API and (when the price
    list has it) as the same open model hosted by a provider; the ranges where each is cheapest.

    `break_even_tokens_per_month` compares self-hosting with the closed API, and
    `hosted_break_even_tokens_per_month` with the hosted model: each is the volume above which
    self-hosting is cheaper at *every* volume, or None when there is no such single crossing
    (self-hosting never wins, or the API wins again while a new replica fills: `ranges` and
    `ranges_versus()` tell where each wins)."""

    model: str
    scheme: str
    gpu: str
    gpus_per_replica: int  # Estimate.devices_needed: the count deployment_plan writes
    gpu_usd_per_hour: float
    api: str
    api_input_usd_per_mtok: float
    api_output_usd_per_mtok: float
    input_share: float  # share of the month's tokens that are prompt (input) tokens
    decode_tokens_per_s: float  # output tokens/s of one replica (all sequences of a batch together)
    prefill_tokens_per_s: float  # input tokens/s of one replica (compute bound: not batch)
    utilization: float  # share of the paid hours a replica spends serving at that speed
    hours_per_month: float
    tokens_per_month: tuple[float, ...]
    api_usd: tuple[float, ...]
    self_hosted_usd: tuple[float, ...]
    replicas: tuple[int, ...]
    break_even_tokens_per_month: float | None  # vs the API; None: no single crossing holds
    sources: dict = field(default_factory=dict, hash=False)
    notes: tuple[str, ...] = ()
    hosted: str | None = None  # the same open model bought per token; None: none in the list
    hosted_input_usd_per_mtok: float | None = None
    hosted_output_usd_per_mtok: float | None = None
    hosted_usd: tuple[float, ...] = ()  # empty when `hosted` is None
    hosted_break_even_tokens_per_month: float | None = None
    ranges: tuple[Range, ...] = ()  # the three options: where each is cheapest, 0 … ∞, no gap
    context: int = 4096
    batch: int = 8

    @property
    def api_usd_per_token(self) -> float:
        s = self.input_share
        return (s * self.api_input_usd_per_mtok + (1 - s) * self.api_output_usd_per_mtok) / 1e6

    @property
    def hosted_usd_per_token(self) -> float | None:
        if self.hosted is None:
            return None
        s, i, o = self.input_share, self.hosted_input_usd_per_mtok, self.hosted_output_usd_per_mtok
        return (s * (i or 0.0) + (1 - s) * (o or 0.0)) / 1e6

    @property
    def replica_usd_per_month(self) -> float:
        return self.gpus_per_replica * self.gpu_usd_per_hour * self.hours_per_month

    @property
    def replica_tokens_per_month(self) -> float:
        """Tokens one replica serves in a month at this mix, speed and utilization (prefill and
        decode take turns on the GPUs)."""
        s = self.input_share
        seconds_per_token = s / self.prefill_tokens_per_s + (1 - s) / self.decode_tokens_per_s
        return self.utilization * self.hours_per_month * 3600 / seconds_per_token

    @property
    def replica_break_even_tokens_per_month(self) -> float | None:
        """The volume at which one replica's month costs what the API bills for it (one replica's
        cost ÷ the API's blended price per token); a break-even for good only when
        `break_even_tokens_per_month` equals it. None when the API is free."""
        p = self.api_usd_per_token
        return self.replica_usd_per_month / p if p > 0 else None

    def prices_per_token(self) -> dict[str, float]:
        """The per-token options' blended prices (US$ per token), by option name."""
        out = {API: self.api_usd_per_token}
        if self.hosted is not None:
            out[HOSTED] = self.hosted_usd_per_token or 0.0
        return out

    def cost(self, option: str, tokens_per_month: float) -> float:
        """US$ for one month of `tokens_per_month` through `option` (one of OPTIONS)."""
        if option == SELF:
            return replicas_for(tokens_per_month, self.replica_tokens_per_month) * (
                self.replica_usd_per_month
            )
        per_token = self.prices_per_token()
        if option not in per_token:
            raise InvalidSetting(
                f"option={option!r} is not priced here.", f"Use one of: {', '.join(self.options)}."
            )
        return tokens_per_month * per_token[option]

    @property
    def options(self) -> tuple[str, ...]:
        return (SELF, API) + ((HOSTED,) if self.hosted is not None else ())

    def cheapest(self, tokens_per_month: float) -> str:
        """The cheapest option at one volume (a tie goes to a per-token option, as in `ranges`)."""
        costs = {o: self.cost(o, tokens_per_month) for o in (*self.prices_per_token(), SELF)}
        return min(costs, key=lambda o: costs[o])  # min keeps the first of equals

    def ranges_versus(self, option: str = API) -> tuple[Range, ...]:
        """Where self-hosting or `option` (API or HOSTED) is cheaper, the two alone."""
        priced = self.prices_per_token()
        if option not in priced:
            raise InvalidSetting(
                f"option={option!r} is not a per-token option here.",
                f"Use one of: {', '.join(priced)}.",
            )
        per_token = {option: priced[option]}
        return winning_ranges(self.replica_tokens_per_month, self.replica_usd_per_month, per_token)

    def curves(self, low: float | None = None, high: float | None = None, per_decade: int = 24):
        """Tidy rows for the sensitivity plot: each option's monthly cost and cost per million
        tokens from `low` to `high` (default: the volumes asked for), log-spaced plus both sides
        of every replica step (so the self-hosted sawtooth shows) and every range boundary."""
        import pandas as pd

        xs = _plot_volumes(self, low, high, per_decade)
        rows = []
        for option in self.options:
            for v in xs:
                usd = self.cost(option, v)
                rows.append(
                    {
                        "tokens_per_month": v,
                        "option": option,
                        "usd_per_month": usd,
                        "usd_per_mtok": usd / v * 1e6,
                        "replicas": replicas_for(v, self.replica_tokens_per_month)
                        if option == SELF
                        else None,
                    }
                )
        return pd.DataFrame(rows)

    def to_frame(self):
        """One row per monthly volume: tokens, each option's cost, replicas, the cheapest."""
        import pandas as pd

        df = pd.DataFrame(
            {
                "tokens_per_month": self.tokens_per_month,
                "api_usd": self.api_usd,
                "hosted_usd": self.hosted_usd or [math.nan] * len(self.tokens_per_month),
                "self_hosted_usd": self.self_hosted_usd,
                "replicas": self.replicas,
            }
        )
        df["cheaper"] = [self.cheapest(v) for v in self.tokens_per_month]
        return df

    def to_dict(self) -> dict:
        return asdict(self)

    def label(self, option: str) -> str:
        """How the option is named in sentences and legends."""
        if option == SELF:
            return f"self-hosted ({self.gpus_per_replica}× {self.gpu} per replica)"
        if option == API:
            return f"API {self.api}"
        return f"hosted {self.hosted}"

    def __str__(self) -> str:
        head = (
            f"{self.model} · {self.scheme}: self-hosted on {self.gpus_per_replica}× {self.gpu} "
            f"per replica (${self.gpu_usd_per_hour:.2f}/GPU-h, ${self.replica_usd_per_month:,.0f} "
            f"a month, serving up to {tokens(self.replica_tokens_per_month)} tokens/month) vs "
            f"{self.api} (${self.api_input_usd_per_mtok:.2f} in / "
            f"${self.api_output_usd_per_mtok:.2f} out per M)"
        )
        if self.hosted is not None:
            head += (
                f" vs {self.hosted} (${self.hosted_input_usd_per_mtok:.2f} in / "
                f"${self.hosted_output_usd_per_mtok:.2f} out per M)"
            )
        return (
            f"{head}. Cheapest: {describe_ranges(self.ranges, self.label)}. {self._versus_api()}."
        )

    def _versus_api(self) -> str:
        be = self.break_even_tokens_per_month
        if be is not None:
            return (
                f"Against {self.api} alone, self-hosting is cheaper above {tokens(be)} tokens/month"
            )
        pair = self.ranges_versus(API)
        if all(r.option == API for r in pair):
            return (
                f"Against {self.api} alone, self-hosting never gets cheaper at these prices "
                "(a busy replica costs more per token than the API)"
            )
        again = sum(r.option == API for r in pair) - 1
        return (
            f"Against {self.api} alone there is no single break-even: each new replica costs more "
            f"than the API until it fills, so the API wins again in {again} range(s); "
            f"self-hosting wins at every volume above {tokens(pair[-1].start)} tokens/month"
        )


def cost_at_scale(
    model="llama-3.1-70b",
    scheme="int8",
    gpu="h100-80gb",
    api="gpt-4o",
    assumptions: CostAssumptions | None = None,
    *,
    hosted: str | None = "auto",
    tokens_per_month=None,
    prices_file=None,
    **overrides,
) -> CostAtScale:
    """Monthly cost of self-hosting `model` under `scheme` on `gpu`, of the closed API `api`, and of
    the same open model hosted by a provider; the volume ranges where each is cheapest.

    Self-hosted: replicas × GPUs per replica × $/GPU-hour × hours, with replicas = ceil(volume ÷ one
    replica's monthly tokens). GPUs per replica: `estimate(model, scheme, context, batch,
    device="cuda", engine=<vllm, llama.cpp for GGUF>).devices_needed(gpu)`, as `deployment_plan`
    sizes it. `hosted`:
    "auto" picks the cheapest price-list entry whose `model` is this model (none: left out, said
    in a note), a name picks that entry, None leaves the option out. `assumptions` (a
    CostAssumptions) and/or its fields as keywords say the rest; measured speeds replace the
    roofline's and the FLOPS'.
    """
    a = with_changes(assumptions or DEFAULT_ASSUMPTIONS, **overrides)
    apis, hours = prices(prices_file)
    api_price = _api(apis, api, a.api_input_usd_per_mtok, a.api_output_usd_per_mtok)
    dev = catalog_gpu(gpu)
    hour = _gpu_hour(hours, dev.name, a.gpu_usd_per_hour)
    engine = engine_for(catalog_scheme(scheme, model))
    e = estimate(model, scheme, a.context, a.batch, device="cuda", engine=engine)
    n_gpus = e.devices_needed(dev)
    c = e.card or card(e.model)
    hosted_price, hosted_note = _hosted(apis, c.name, hosted, a)
    decode, decode_note = _decode(a, c, scheme, dev, n_gpus)
    prefill, prefill_note = _prefill(a, c, dev, n_gpus)
    notes = [
        f"{n_gpus} × {dev.name} per replica (Estimate.devices_needed, as deployment_plan sizes "
        f"it): vLLM's estimated peak {e.peak_bytes / 1e9:.1f} GB at context {a.context}, batch "
        f"{a.batch}, over GPUs of {dev.memory_mib:.0f} MiB.",
        decode_note,
        prefill_note,
        f"Replicas step up: ceil(volume ÷ one replica's tokens a month) of them are paid, each "
        f"busy {a.utilization:.0%} of {a.hours_per_month:g} hours; prompt and reply tokens take "
        "turns on its GPUs.",
        *([hosted_note] if hosted_note else []),
        _prices_note(hour, api_price, hosted_price),
    ]
    sources = {
        "api": f"{api_price.source} ({api_price.date})",
        "gpu_hour": f"{hour.provider}: {hour.source} ({hour.date})",
    }
    if hosted_price is not None:
        sources["hosted"] = f"{hosted_price.source} ({hosted_price.date})"
    r = CostAtScale(
        model=e.model,
        scheme=e.scheme,
        gpu=dev.name,
        gpus_per_replica=n_gpus,
        gpu_usd_per_hour=hour.usd_per_hour,
        api=api_price.name,
        api_input_usd_per_mtok=api_price.input_usd_per_mtok,
        api_output_usd_per_mtok=api_price.output_usd_per_mtok,
        input_share=a.input_share,
        decode_tokens_per_s=decode,
        prefill_tokens_per_s=prefill,
        utilization=a.utilization,
        hours_per_month=a.hours_per_month,
        tokens_per_month=_volumes(tokens_per_month),
        api_usd=(),
        self_hosted_usd=(),
        replicas=(),
        break_even_tokens_per_month=None,
        sources=sources,
        notes=tuple(notes),
        hosted=hosted_price.name if hosted_price else None,
        hosted_input_usd_per_mtok=hosted_price.input_usd_per_mtok if hosted_price else None,
        hosted_output_usd_per_mtok=hosted_price.output_usd_per_mtok if hosted_price else None,
        context=a.context,
        batch=a.batch,
    )
    return _with_curves(r)


# --- the arithmetic of steps and ranges -------------------------------------------------------


def replicas_for(tokens_per_month: float, replica_tokens_per_month: float) -> int:
    """Replicas paid for a month's volume: at least one (it is paid busy or not), then one more
    each time the volume passes a full replica's capacity."""
    return max(1, math.ceil(tokens_per_month / replica_tokens_per_month - 1e-9))


def winning_ranges(
    replica_tokens: float, replica_usd: float, per_token: dict[str, float]
) -> tuple[Range, ...]:
    """Where self-hosting (`replica_usd` per replica, each serving `replica_tokens`) or the cheapest
    per-token option of `per_token` (US$ per token) costs least, over volumes 0 … ∞.

    The cheapest per-token price `p` wins everywhere among the per-token options. Self-hosting
    with n replicas wins on (n·b, n·cap], b = replica_usd / p being one replica's break-even and
    cap its capacity: never if b ≥ cap; and the per-token option wins again on ((n−1)·cap, n·b]
    for every n with n·b > (n−1)·cap (the n-th replica is paid in full but still mostly idle).
    Past the last such n, self-hosting wins for good. Windows are listed one by one up to
    MAX_STEPS replicas; beyond, the ones left (each narrower than 1/MAX_STEPS of its volume) count
    as self-hosted.
    """
    best = min(per_token, key=lambda o: per_token[o])
    p, cap, usd = per_token[best], replica_tokens, replica_usd
    if p <= 0 or usd / p >= cap:
        return (Range(0.0, math.inf, best),)
    b = usd / p
    if b == 0:
        return (Range(0.0, math.inf, SELF),)
    out, start, n = [Range(0.0, b, best)], b, 2
    while n * b > (n - 1) * cap and n <= MAX_STEPS:
        out += [Range(start, (n - 1) * cap, SELF), Range((n - 1) * cap, n * b, best)]
        start, n = n * b, n + 1
    return (*out, Range(start, math.inf, SELF))


def single_crossing(ranges: tuple[Range, ...]) -> float | None:
    """The volume above which self-hosting wins at every volume, when the two options cross once
    (or self-hosting wins from 0); else None."""
    if ranges[-1].option != SELF or len(ranges) > 2:
        return None
    return ranges[0].end if len(ranges) == 2 else 0.0


def tokens(v: float) -> str:
    """A token count the way a sentence says it: 998 M, 1.44 B, 2.5 T."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:,.0f}"


def describe_ranges(ranges, label=lambda o: o, most: int = 7) -> str:
    """The ranges in words; a long alternation is summed up, with where it ends."""

    def one(r: Range) -> str:
        if r.start == 0 and math.isinf(r.end):
            return f"{label(r.option)} at every volume"
        if r.start == 0:
            return f"{label(r.option)} up to {tokens(r.end)} tokens/month"
        if math.isinf(r.end):
            return f"{label(r.option)} above {tokens(r.start)}"
        return f"{label(r.option)} {tokens(r.start)}–{tokens(r.end)}"

    if len(ranges) <= most:
        return ", ".join(one(r) for r in ranges)
    first, last = ranges[0], ranges[-1]
    return (
        f"{one(first)}, then {len(ranges) - 2} ranges alternating between "
        f"{tokens(first.end)} and {tokens(last.start)} (the .ranges list), {one(last)}"
    )


def _with_curves(r: CostAtScale) -> CostAtScale:
    cap, per_replica = r.replica_tokens_per_month, r.replica_usd_per_month
    volumes = r.tokens_per_month
    replicas = tuple(replicas_for(v, cap) for v in volumes)
    per_token = r.prices_per_token()
    hosted_vs = per_token.get(HOSTED)
    return replace(
        r,
        api_usd=tuple(v * per_token[API] for v in volumes),
        hosted_usd=tuple(v * hosted_vs for v in volumes) if hosted_vs is not None else (),
        self_hosted_usd=tuple(n * per_replica for n in replicas),
        replicas=replicas,
        ranges=winning_ranges(cap, per_replica, per_token),
        break_even_tokens_per_month=single_crossing(r.ranges_versus(API)),
        hosted_break_even_tokens_per_month=(
            single_crossing(r.ranges_versus(HOSTED)) if hosted_vs is not None else None
        ),
    )


def _plot_volumes(r: CostAtScale, low, high, per_decade: int) -> list[float]:
    positive = [v for v in r.tokens_per_month if v > 0] or [1e6]
    lo = validate.number("low", low if low is not None else min(positive), lo=1e-9)
    hi = validate.number("high", high if high is not None else max(positive), lo=lo)
    k = max(1, math.ceil(math.log10(hi / lo) * per_decade)) if hi > lo else 1
    xs = {lo * (hi / lo) ** (i / k) for i in range(k + 1)}
    cap = r.replica_tokens_per_month
    for n in range(max(1, math.floor(lo / cap)), min(math.ceil(hi / cap), 400) + 1):
        xs.update((n * cap, n * cap * (1 + 1e-6)))  # both sides of the n-th step
    xs.update(x for rg in r.ranges for x in (rg.start, rg.end))
    return sorted(x for x in xs if lo <= x <= hi)


# --- speeds ------------------------------------------------------------------------------------


def _decode(a: CostAssumptions, c: ModelCard, scheme, dev: GPU, n_gpus: int) -> tuple[float, str]:
    """Output tokens/s of one replica: measured, or the bandwidth roofline × efficiency."""
    if a.decode_tokens_per_s is not None:
        return a.decode_tokens_per_s, f"Decode: {a.decode_tokens_per_s:,.0f} tokens/s, given."
    roof = roofline(c, scheme, dev, a.context, a.batch)["tokens_per_s_total"]
    speed = roof * n_gpus * a.efficiency
    return speed, (
        f"Decode: bandwidth roofline {roof:,.0f} tokens/s on one {dev.name} at batch {a.batch} "
        f"(each step reads the active weights once for the whole batch, plus every sequence's KV "
        f"cache at context {a.context}) × {n_gpus} GPU(s) (the replica's GPUs split the bytes "
        f"read) × efficiency {a.efficiency:g} = {speed:,.0f} tokens/s."
    )


def _prefill(a: CostAssumptions, c: ModelCard, dev: GPU, n_gpus: int) -> tuple[float, str]:
    """Input tokens/s of one replica: measured, or compute bound — dense FLOPS × prefill_efficiency
    over 2 × active parameters FLOPs a token. A prompt's tokens go through the weights together,
    so prefill does not get faster with batch, only with the GPUs' compute."""
    if a.prefill_tokens_per_s is not None:
        return a.prefill_tokens_per_s, f"Prefill: {a.prefill_tokens_per_s:,.0f} tokens/s, given."
    tflops, kind = dense_tflops(dev)
    speed = a.prefill_efficiency * n_gpus * tflops * 1e12 / (2 * c.active_params)
    return speed, (
        f"Prefill (compute bound, not batch): {a.prefill_efficiency:g} × {n_gpus} GPU(s) × "
        f"{tflops:g} dense {kind} TFLOPS ÷ (2 × {c.active_params / 1e9:.1f} B active parameters) "
        f"FLOPs per token = {speed:,.0f} tokens/s (attention's own FLOPs, a few % at 4K context, "
        "are left out; weight-only quantized schemes multiply in 16 bits)."
    )


def dense_tflops(dev: GPU) -> tuple[float, str]:
    """A GPU's peak dense 16-bit tensor TFLOPS and which kind: BF16, else FP16 (hardware.toml's
    fp16_tflops, given for cards without BF16)."""
    if dev.bf16_tflops:
        return dev.bf16_tflops, "BF16"
    if dev.fp16_tflops:
        return dev.fp16_tflops, "FP16"
    raise LlamalabError(
        f"No 16-bit TFLOPS known for {dev.name}: prefill speed cannot be computed.",
        "Pass prefill_tokens_per_s=… (measured), or add bf16_tflops to the GPU in hardware.toml.",
    )


# --- prices ------------------------------------------------------------------------------------


def _prices_note(hour: GpuHourPrice, api: ApiPrice, hosted: ApiPrice | None) -> str:
    parts: list[tuple[str, GpuHourPrice | ApiPrice]] = [
        (f"GPU-hour: {hour.provider}", hour),
        (f"API: {api.display}", api),
    ]
    if hosted is not None:
        parts.append((f"hosted: {hosted.display}", hosted))
    dates = sorted({p.date for _, p in parts})
    listed = "; ".join(f"{what}, {p.date}, {p.source}" for what, p in parts)
    return (
        f"Prices as of {', '.join(dates)} — {listed}. List prices entered by hand and never "
        "fetched: pass your own (gpu_usd_per_hour, api_/hosted_input_usd_per_mtok, …)."
    )


def _api(apis: dict, name, input_price, output_price, what: str = "api") -> ApiPrice:
    if name in apis:
        base = apis[name]
    elif input_price is not None and output_price is not None:
        base = ApiPrice(
            validate.text(what, name), name, 0.0, 0.0, "given by the caller", "given by the caller"
        )
    else:
        raise InvalidSetting(
            f"{what}={name!r} has no price in the price list.",
            f"Use one of: {', '.join(apis)}; or pass {what}_input_usd_per_mtok and "
            f"{what}_output_usd_per_mtok for another one.",
        )
    if input_price is None and output_price is None:
        return base
    return replace(
        base,
        input_usd_per_mtok=validate.number(f"{what}_input_usd_per_mtok", input_price, lo=0)
        if input_price is not None
        else base.input_usd_per_mtok,
        output_usd_per_mtok=validate.number(f"{what}_output_usd_per_mtok", output_price, lo=0)
        if output_price is not None
        else base.output_usd_per_mtok,
        date="given by the caller",
        source="given by the caller",
    )


def _hosted(apis: dict, model: str, choice, a: CostAssumptions) -> tuple[ApiPrice | None, str]:
    """The same open model bought per token: ("auto") the cheapest entry whose `model` is this
    model, a named entry, or none; with a note when it is left out or serves another model."""
    given = (a.hosted_input_usd_per_mtok, a.hosted_output_usd_per_mtok)
    if choice is None:
        return None, ""
    if choice == "auto":
        serving = [p for p in apis.values() if p.model == model]
        if not serving and None not in given:
            return _api(apis, f"hosted-{model}", *given, what="hosted"), ""
        if not serving:
            return None, (
                f"No provider in the price list serves {model}: the hosted option is left out "
                f'(add an [[api]] entry with model = "{model}" to prices.toml, or pass '
                "hosted_input_usd_per_mtok and hosted_output_usd_per_mtok)."
            )
        choice = min(serving, key=lambda p: p.usd_per_token(a.input_share)).name
    price = _api(apis, choice, *given, what="hosted")
    if price.model and price.model != model:
        return price, f"The hosted option {price.name} serves {price.model}, not {model}."
    return price, ""


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
