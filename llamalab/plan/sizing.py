"""One model × scheme × context on one GPU type: does it fit, how many GPUs (`Estimate.split`, the
answer `deployment_plan` and `cost_at_scale` give), the longest context, the best scheme. What the
memory calculator and `llamalab estimate --gpu` show. Pure arithmetic, no torch."""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog
from ..catalog import card
from .choice import choose_scheme
from .estimator import Estimate, device_for, estimate, max_context
from .parallel import PlanDoesNotFit


@dataclass(frozen=True)
class Sizing:
    """The answers for one model × scheme × context on one GPU type."""

    estimate: Estimate
    gpu: str  # what was asked: a catalog name, "2x h100-80gb", "this" or bytes
    fits: bool
    devices_needed: int  # GPUs of `gpu`'s type per replica (Estimate.split; 0: none holds it)
    max_context: int  # longest context that fits under this scheme (0: not even one token)
    best_scheme: str | None  # highest-fidelity scheme that fits and is fast enough (choose_scheme)
    best_scheme_why: str  # why that one: the slower schemes passed over, the speed law's source
    fits_on: tuple[str, ...]  # catalog GPUs that hold it alone

    def to_dict(self) -> dict:
        return {
            **self.estimate.to_dict(),
            "gpu": self.gpu,
            "fits": self.fits,
            "devices_needed": self.devices_needed,
            "max_context": self.max_context,
            "best_scheme": self.best_scheme,
            "best_scheme_why": self.best_scheme_why,
            "fits_on": list(self.fits_on),
        }


def sizing(
    model="default",
    scheme="bf16",
    gpu="this",
    context: int = 4096,
    batch: int = 1,
    mode: str = "inference",
    device: str = "auto",
    **kw,
) -> Sizing:
    """Estimate `model` and answer the reverse questions for `gpu`: does it fit, how many are
    needed, the longest context, the best scheme. `device` (whose runtime overhead is counted)
    follows `gpu`: CUDA for a catalog GPU, this machine's kind for gpu='this'."""
    device = device_for(gpu, device)
    c = card(model)
    e = estimate(c, scheme, context, batch, mode, device=device, **kw)
    choice = choose_scheme(c, gpu, context, batch, mode, device=device, **kw)
    return Sizing(
        estimate=e,
        gpu=str(gpu),
        fits=e.fits(gpu),
        devices_needed=_devices_needed(e, gpu),
        max_context=max_context(c, e.scheme, gpu, batch, mode=mode, device=device, **kw),
        best_scheme=choice.scheme,
        best_scheme_why=choice.why,
        fits_on=tuple(g for g in catalog.gpu_names() if e.fits(catalog.gpu(g))),
    )


def _devices_needed(e: Estimate, gpu) -> int:
    try:
        return e.devices_needed(gpu)
    except PlanDoesNotFit:
        return 0
