"""Which scheme to run: the highest-fidelity one that fits the memory and, for inference, decodes
at least at a target speed (a reading pace by default) by the speed law on the machine asked about.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog as cat
from ..catalog import card
from ..core import validate
from ..core.errors import InvalidSetting
from ..core.hardware import GPU
from .commands import MIN_CAPABILITY
from .estimator import THIS, assumptions, budget_bytes, device_for, estimate, gpu_count
from .parallel import capacity
from .speed import bandwidth


@dataclass(frozen=True)
class SchemeChoice:
    """The chosen scheme (None: none fits), why, and every candidate's memory and speed."""

    scheme: str | None
    why: str
    target_tokens_per_s: float | None  # None: speed not weighed (training, or bandwidth unknown)
    rows: tuple[dict, ...]  # per candidate: scheme, peak_bytes, fits, tokens_per_s

    def __str__(self) -> str:
        return f"{self.scheme}: {self.why}"


def choose_scheme(
    model="default",
    gpu="this",
    context: int = 4096,
    batch: int = 1,
    mode: str = "inference",
    candidates=None,
    target_tokens_per_s: float | None = None,
    **kw,
) -> SchemeChoice:
    """Every candidate's estimate on `gpu` and its decode speed (bandwidth ÷ bytes per token); the
    choice is the highest-fidelity scheme that fits and reaches `target_tokens_per_s` (default: the
    reading pace in catalog/assumptions.toml; 0 ignores speed), else the fastest that fits."""
    c = card(model)
    kw["device"] = device_for(gpu, kw.get("device", "auto"))
    pool = [s for s in _pool(c, candidates) if _runs_on(s, kw["device"], gpu)]
    estimate(c, "bf16", context, batch, mode, **kw)  # bad settings raise here, not as "none fits"
    if mode == "full":
        pool = [s for s in pool if s.is_float]
    budget, bw = budget_bytes(gpu), bandwidth(gpu) if mode == "inference" else None
    target = _target(target_tokens_per_s) if bw else None
    rows = []
    for s in sorted(pool, key=lambda s: (s.rank, -s.bits)):
        e = estimate(c, s, context, batch, mode, **kw)
        weights = e.breakdown["weights"] * (c.active_params / c.params if c.is_moe else 1)
        speed = bw[0] / (weights + e.breakdown["kv_cache"]) if bw else None
        fits = e.peak_bytes <= budget * capacity(e.engine)
        rows.append(
            {"scheme": s.name, "peak_bytes": e.peak_bytes, "fits": fits, "tokens_per_s": speed}
        )
    return _choose(rows, target, bw)


def best_scheme(
    model="default",
    gpu="this",
    context: int = 4096,
    batch: int = 1,
    mode: str = "inference",
    candidates=None,
    **kw,
) -> str | None:
    """The scheme `choose_scheme` picks (None if none fits); `choose_scheme(...).why` says why."""
    return choose_scheme(model, gpu, context, batch, mode, candidates, **kw).scheme


def _pool(c, candidates) -> list:
    if candidates is not None and (
        isinstance(candidates, str) or not hasattr(candidates, "__iter__")
    ):
        raise InvalidSetting(
            f"candidates={candidates!r} is not a list of schemes.",
            "Pass e.g. candidates=['bf16', 'int8'], or leave it out for every scheme.",
        )
    return [cat.scheme(x, c) for x in candidates or cat.scheme_names()]


def _runs_on(s, device: str, gpu) -> bool:
    """A scheme the machine asked about can run: a CPU needs an in-process backend; a GPU an
    in-process one or vLLM's, with kernels for a catalog GPU's compute capability (no FP8 on T4)."""
    kind = device.split(":")[0]
    if kind == "cpu":
        return bool(s.backend_for("cpu"))
    if not (s.backend_for(kind) or s.vllm_quantization):
        return False
    g = gpu if isinstance(gpu, GPU) else _catalog_gpu(gpu)
    need = MIN_CAPABILITY.get(s.vllm_quantization or "", 0.0)
    return g is None or not g.cuda_capability or float(g.cuda_capability) >= need


def _catalog_gpu(gpu) -> GPU | None:
    if not isinstance(gpu, str) or gpu.strip().lower() in THIS:
        return None
    return gpu_count(gpu)[1]


def _target(target) -> float:
    if target is None:
        return float(assumptions()["speed"]["reading_tokens_per_s"])
    return validate.number("target_tokens_per_s", target, lo=0)


def _choose(rows: list[dict], target: float | None, bw) -> SchemeChoice:
    fit = [r for r in rows if r["fits"]]
    if not fit:
        return SchemeChoice(None, "no scheme fits in memory", target, tuple(rows))
    if target is None:
        return SchemeChoice(
            fit[0]["scheme"], "the highest-fidelity scheme that fits", None, tuple(rows)
        )
    fast = [r for r in fit if r["tokens_per_s"] >= target]
    best = fast[0] if fast else max(fit, key=lambda r: r["tokens_per_s"])
    slower = [r for r in fit[: fit.index(best)] if r["tokens_per_s"] < target]
    passed = {r["scheme"]: r for r in slower[:1] + slower[-1:]}.values()  # the best and the nearest
    why = "; ".join(f"{r['scheme']} fits but ~{r['tokens_per_s']:.1f} tok/s" for r in passed)
    verdict = (
        f"{best['scheme']} ~{best['tokens_per_s']:.1f} tok/s, at least the target {target:g}"
        if fast
        else f"none reaches {target:g} tok/s: {best['scheme']} is the fastest that fits "
        f"(~{best['tokens_per_s']:.1f} tok/s)"
    )
    why = f"{why}; {verdict}" if why else verdict
    return SchemeChoice(best["scheme"], f"{why} (bandwidth: {bw[1]})", target, tuple(rows))
