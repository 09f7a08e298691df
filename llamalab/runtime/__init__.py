"""Loading models: pick the backend for (scheme, device), check the estimate fits, load, measure."""
from __future__ import annotations

import logging
import time

from .. import catalog
from ..catalog import ModelCard, Scheme
from ..errors import InvalidSetting, LlamalabError, NotEnoughMemory, SchemeUnavailable
from ..estimate import best_scheme, estimate
from . import backends
from .loaded import Generation, LoadedModel
from .meter import MemoryMeter
from .source import resolve

__all__ = ["load", "schemes", "resolve_device", "Generation", "LoadedModel"]

DEVICES = ("cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """'auto' → 'cuda' when torch sees a GPU, else 'cpu'; 'cuda:1' is kept as is."""
    if device == "auto":
        import torch
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.split(":")[0] not in DEVICES:
        raise InvalidSetting(f"Unknown device {device!r}.", "Use 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    return device


def check_scheme(s: Scheme, device: str) -> None:
    """Raise SchemeUnavailable (with the reason and an alternative) or BackendMissing."""
    kind = device.split(":")[0]
    cell = s.devices.get(kind, {})
    if not cell.get("backend"):
        raise SchemeUnavailable(s.name, kind, cell.get("reason", "not supported"), _alternative(s, kind))
    mod = backends.module(cell["backend"])
    for package, install in getattr(mod, "REQUIRES", {}).get(kind, ()):
        backends.require(package, install, f"{s.name} on {kind} needs it")
    ok, reason = backends.availability(cell["backend"], device)
    if not ok:
        raise SchemeUnavailable(s.name, kind, reason, _alternative(s, kind))


def _alternative(s: Scheme, device: str) -> str | None:
    """The closest scheme (by fidelity rank) that does run on this device here."""
    runnable = [x for x in catalog.all_schemes() if x.name != s.name and _runs(x, device)]
    runnable.sort(key=lambda x: (abs(x.rank - s.rank), -x.rank))
    return runnable[0].name if runnable else None


def _runs(s: Scheme, device: str) -> bool:
    backend = s.backend_for(device)
    return bool(backend) and backends.availability(backend, device)[0]


def load(model: str | ModelCard = "default", scheme: str | Scheme = "bf16", device: str = "auto",
         force: bool = False, trust_remote_code: bool = False, context: int | None = None,
         **options) -> LoadedModel:
    """Load `model` under `scheme` on `device` and measure the load.

    Refuses (NotEnoughMemory, naming a scheme that would fit) when the estimate for `context`
    tokens exceeds the memory available now, unless force=True. `trust_remote_code` stays off
    unless you ask for it.
    """
    c, s = catalog.card(model), catalog.scheme(scheme)
    device = resolve_device(device)
    check_scheme(s, device)
    ctx = context or min(c.context, 4096)
    est = estimate(c, s, ctx, device=device)
    if not force:
        _check_memory(c, s, est, device, ctx)
    path = resolve(model, c, s)
    mod = backends.module(s.backend_for(device))
    with MemoryMeter(device) as mem:
        t0 = time.perf_counter()
        engine = mod.load(path, s, device, trust_remote_code=trust_remote_code, **options)
        seconds = time.perf_counter() - t0
    return LoadedModel(engine=engine, card=c, scheme=s, device=device, load_seconds=seconds,
                       footprint_bytes=engine.weights_bytes(), memory_delta_bytes=mem.growth_bytes,
                       memory_delta_kind=mem.kind, load_peak_bytes=mem.peak_growth_bytes, estimate=est,
                       path=str(path), backend=mod.__name__.rsplit(".", 1)[1])


def _quiet_known_noise() -> None:
    """Logs that are noise for a learner on a CPU machine: torchao's missing CUDA-only extensions,
    torch's pytree deprecation (both whenever transformers imports torchao), and bitsandbytes'
    optional AVX512-BF16 kernel it would fetch from the Hub (`kernels` package; never offline)."""
    for name in ("torchao", "torch.utils._pytree", "bitsandbytes.backends.cpu.ops"):
        logging.getLogger(name).setLevel(logging.ERROR)


_quiet_known_noise()


def _check_memory(c: ModelCard, s: Scheme, est, device: str, ctx: int) -> None:
    from ..hardware import hardware
    hw = hardware()
    available = hw.budget_bytes(device)
    # On CPU the Python runtime is already resident (in this process), so it is not needed again.
    needed = est.peak_bytes - (est.breakdown["overhead"] if device == "cpu" else 0)
    if needed > available:
        fits = best_scheme(c, available + (est.breakdown["overhead"] if device == "cpu" else 0), ctx,
                           candidates=[x.name for x in catalog.all_schemes() if _runs(x, device)], device=device)
        raise NotEnoughMemory(needed, available, "this machine's RAM" if device == "cpu" else device, fits)


def schemes():
    """The scheme × device capability table, with the reason for every cell that cannot run here."""
    import pandas as pd
    rows = []
    for s in catalog.all_schemes():
        for dev in DEVICES:
            backend = s.backend_for(dev)
            try:
                if backend:
                    check_scheme(s, dev)
                ok, reason = (True, "") if backend else (False, s.devices.get(dev, {}).get("reason", "not supported"))
            except LlamalabError as e:
                ok, reason = False, e.message if not hasattr(e, "reason") else e.reason
            rows.append({"scheme": s.name, "device": dev, "family": s.family, "bits": s.bits,
                         "bits_per_weight": round(s.bits_per_weight(), 3), "backend": backend,
                         "available": ok, "reason": reason, "help": s.help})
    return pd.DataFrame(rows)
