"""One model × scheme × context on one GPU type: does it fit, how many GPUs, the longest context,
the best scheme. What the memory calculator and `llamalab estimate --gpu` show. Pure arithmetic,
no torch."""

from __future__ import annotations

from dataclasses import dataclass

from .. import catalog
from ..catalog import card
from .estimator import Estimate, best_scheme, device_for, estimate, max_context


@dataclass(frozen=True)
class Sizing:
    """The answers for one model × scheme × context on one GPU type."""

    estimate: Estimate
    gpu: str  # what was asked: a catalog name, "2x h100-80gb", "this" or bytes
    fits: bool
    devices_needed: int  # of `gpu`, the peak split evenly (weights sharded)
    max_context: int  # longest context that fits under this scheme (0: not even one token)
    best_scheme: str | None  # highest-fidelity scheme that fits at this context (None: none does)
    fits_on: tuple[str, ...]  # catalog GPUs that hold it alone

    def to_dict(self) -> dict:
        return {
            **self.estimate.to_dict(),
            "gpu": self.gpu,
            "fits": self.fits,
            "devices_needed": self.devices_needed,
            "max_context": self.max_context,
            "best_scheme": self.best_scheme,
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
    return Sizing(
        estimate=e,
        gpu=str(gpu),
        fits=e.fits(gpu),
        devices_needed=e.devices_needed(gpu),
        max_context=max_context(c, e.scheme, gpu, batch, mode=mode, device=device, **kw),
        best_scheme=best_scheme(c, gpu, context, batch, mode, device=device, **kw),
        fits_on=tuple(g for g in catalog.gpu_names() if e.fits(catalog.gpu(g))),
    )
