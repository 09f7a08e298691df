"""Where a measured decode speed sits on the learner's own machine: against the roofline of the
bandwidth measured now (bandwidth ÷ bytes per token), beside the share a quiet machine reaches and
what a lower one usually means. A "what you should see" that holds on any machine, not one VM's."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..core import container
from ..core.hardware import cpu_bf16, memory_bandwidth
from ..plan.estimator import assumptions
from ..plan.speed import bytes_per_step


@dataclass(frozen=True)
class SpeedReading:
    """A decode speed, this machine's roofline for it, and what the share of that roofline means."""

    tokens_per_s: float
    roofline_tokens_per_s: float
    bandwidth_bytes_s: float
    quiet_share: tuple[float, float]
    busy: bool  # the load average over the last minute exceeds the usable cores
    meaning: str

    @property
    def share(self) -> float:
        return self.tokens_per_s / self.roofline_tokens_per_s

    def __str__(self) -> str:
        lo, hi = self.quiet_share
        return (
            f"decode {self.tokens_per_s:.1f} tokens/s = {self.share:.0%} of this machine's "
            f"roofline ({self.roofline_tokens_per_s:.0f} tokens/s: "
            f"{self.bandwidth_bytes_s / 1e9:.1f} GB/s measured now ÷ the bytes a token reads); "
            f"a quiet machine reaches {lo:.0%}–{hi:.0%} with a model this small.\n{self.meaning}"
        )

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(str(self))


def read_speed(generation, context: int | None = None) -> SpeedReading:
    """Place `generation`'s decode speed (a local CPU run) against this machine's roofline."""
    model, scheme = generation.model or "default", generation.scheme or "bf16"
    tokens = context or generation.prompt_tokens + generation.new_tokens
    bw = memory_bandwidth().bytes_per_s
    roof = bw / bytes_per_step(model, scheme, tokens)
    lo, hi = (float(x) for x in assumptions()["speed"]["quiet_roofline_share"])
    busy = os.getloadavg()[0] > container.usable_cpus(container.limits().cpu_quota)
    share = generation.decode_tokens_per_s / roof
    meaning = _meaning(share, lo, busy, scheme)
    return SpeedReading(generation.decode_tokens_per_s, roof, bw, (lo, hi), busy, meaning)


def _meaning(share: float, quiet_low: float, busy: bool, scheme: str) -> str:
    if share >= quiet_low:
        return "✓ what a quiet machine gives: per-token overhead and bytes set the speed." + (
            " Other work shares the cores now, so the bandwidth measured now (the roofline) and "
            "the speed are both lower than this machine's own."
            if busy
            else ""
        )
    reasons = []
    if busy:
        reasons.append(
            "other work shares the cores right now (load average above the core count): "
            "close it and rerun to see this machine's own speed"
        )
    if scheme == "bf16" and not cpu_bf16():
        reasons.append(
            "this CPU has no bf16 instructions, so bf16 runs emulated: load with scheme='fp32' "
            "or a GGUF scheme such as 'q8_0' for its real speed"
        )
    if not reasons:
        reasons.append(
            "a short answer times few tokens (raise max_new_tokens), or a first call still "
            "warming up: run the cell again"
        )
    return (
        "Below a quiet machine's range. If you see this, it usually means: "
        + "; or ".join(reasons)
        + "."
    )
