"""The training estimator against published fine-tuning peaks (catalog/training_peaks.toml): each
row's estimate under the row's own settings, its error, and the Markdown table of
docs/training-peaks.md, so the comparison is computed rather than typed."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING

from ..catalog.training import Peak, peaks
from ..core.errors import LlamalabError
from .estimator import Estimate, estimate

if TYPE_CHECKING:
    import pandas as pd

GB = 1e9  # both sources print decimal GB


@dataclass(frozen=True)
class PeakCheck:
    """One published peak beside the estimator's prediction for the same settings."""

    peak: Peak
    estimate: Estimate

    @property
    def predicted_bytes(self) -> int:
        """The estimate as the published counter sees it: without the CUDA context, which torch's
        allocator counters (peak allocated, peak reserved: the sources' `measures`) do not count."""
        return self.estimate.total_bytes - self.estimate.breakdown["overhead"]

    @property
    def error(self) -> float:
        """(predicted − published) / published: positive when the estimator says more."""
        return self.predicted_bytes / self.peak.published_bytes - 1

    @property
    def within_tolerance(self) -> bool:
        return abs(self.error) <= self.peak.tolerance


def predict(peak: Peak) -> Estimate:
    """The estimate for one published row, with its model, base, method, micro-batch, length,
    checkpointing, rank and adapted linears, on a CUDA device."""
    return estimate(
        peak.model,
        peak.scheme,
        context=peak.seq_len,
        batch=peak.micro_batch,
        mode=peak.method,
        device="cuda",
        lora_rank=peak.lora_rank,
        gradient_checkpointing=peak.checkpointing,
        target_modules=list(peak.lora_targets),
    )


def checks() -> list[PeakCheck]:
    """Every published peak with its prediction, in the catalog's order."""
    return [PeakCheck(p, predict(p)) for p in peaks()]


def table() -> pd.DataFrame:
    """One row per published peak: its settings, predicted and published GB, error and tolerance."""
    import pandas as pd

    return pd.DataFrame([_record(c) for c in checks()])


def _record(c: PeakCheck) -> dict:
    p, b = c.peak, c.estimate.breakdown
    trained = b["adapters"] + b["gradients"] + b["optimizer"]
    return {
        "id": p.id,
        "model": p.model,
        "method": p.method,
        "precision": p.precision,
        "micro_batch": p.micro_batch,
        "seq_len": p.seq_len,
        "checkpointing": p.checkpointing,
        "lora_rank": p.lora_rank,
        "lora_targets": ",".join(p.lora_targets),
        "weights_gb": b["weights"] / GB,
        "activations_gb": b["activations"] / GB,
        "trained_state_gb": trained / GB,
        "predicted_gb": c.predicted_bytes / GB,
        "published_gb": p.published_gb,
        "error": c.error,
        "tolerance": p.tolerance,
        "measures": p.measures,
    }


def slopes() -> list[dict]:
    """GB per extra sequence in the micro-batch, published vs predicted, between rows of one source
    that differ only in micro-batch: the per-token terms without the weights."""
    groups: dict[tuple, list[PeakCheck]] = {}
    for c in checks():
        groups.setdefault(_series(c.peak), []).append(c)
    return [
        _slope(a, b)
        for series in groups.values()
        for a, b in pairwise(sorted(series, key=lambda c: c.peak.micro_batch))
    ]


def _series(p: Peak) -> tuple:
    """What must be equal for two rows to differ only in micro-batch."""
    keys = ("source", "model", "method", "scheme", "precision", "seq_len", "checkpointing")
    return tuple(getattr(p, k) for k in keys) + (p.lora_rank, p.lora_targets)


def _slope(a: PeakCheck, b: PeakCheck) -> dict:
    rows = b.peak.micro_batch - a.peak.micro_batch
    return {
        "from": a.peak.id,
        "to": b.peak.id,
        "published_gb": (b.peak.published_bytes - a.peak.published_bytes) / rows / GB,
        "predicted_gb": (b.predicted_bytes - a.predicted_bytes) / rows / GB,
    }


def markdown() -> str:
    """The comparison, the batch slopes and each row's note (docs/training-peaks.md)."""
    head = (
        "| row | model | method · precision | micro-batch × tokens | checkpointing | LoRA rank · "
        "targets | weights GB | activations GB | predicted GB | published GB | error | allowed |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    done = checks()
    parts = [head, *map(_line, done), "", _slope_table(), "", *_notes(done)]
    return "\n".join(parts) + "\n"


def _line(c: PeakCheck) -> str:
    p, b = c.peak, c.estimate.breakdown
    cells = (
        p.id,
        p.model,
        f"{p.method} · {p.precision}",
        f"{p.micro_batch} × {p.seq_len}",
        "yes" if p.checkpointing else "no",
        f"{p.lora_rank} · {', '.join(x.removesuffix('_proj') for x in p.lora_targets)}",
        f"{b['weights'] / GB:.2f}",
        f"{b['activations'] / GB:.2f}",
        f"{c.predicted_bytes / GB:.2f}",
        f"{p.published_gb:.2f}",
        f"{c.error:+.0%}",
        f"±{p.tolerance:.0%}",
    )
    return "| " + " | ".join(cells) + " |"


def _slope_table() -> str:
    rows = [
        f"| {s['from']} → {s['to']} | {s['predicted_gb']:.2f} | {s['published_gb']:.2f} | "
        f"{s['predicted_gb'] / s['published_gb'] - 1:+.0%} |"
        for s in slopes()
    ]
    head = "| per extra sequence | predicted GB | published GB | error |\n|---|---|---|---|"
    return "\n".join([head, *rows])


def _notes(done: list[PeakCheck]) -> list[str]:
    """A bullet per row with a note: why a gap over 20 % is allowed (bold), or a smaller caveat."""
    out = []
    for c in done:
        p = c.peak
        if p.tolerance_note:
            out.append(
                f"- **{p.id}** ({c.error:+.0%}, allowed ±{p.tolerance:.0%}): {p.tolerance_note}"
            )
        if p.note:
            out.append(f"- {p.id} ({c.error:+.0%}): {p.note}")
    return out


BEGIN = "<!-- begin: python -m llamalab.plan.training_peaks docs/training-peaks.md -->"
END = "<!-- end: generated -->"


def rewrite(path: str) -> None:
    """Replace the generated part of a Markdown file (between BEGIN and END) with markdown()."""
    from pathlib import Path

    text = Path(path).read_text()
    if BEGIN not in text or END not in text:
        raise LlamalabError(
            f"{path} has no generated part to replace.",
            f"Put the lines {BEGIN} and {END} where the tables belong.",
        )
    before, _, rest = text.partition(BEGIN + "\n")
    after = rest.partition(END)[2]
    Path(path).write_text(f"{before}{BEGIN}\n{markdown()}{END}{after}")


if __name__ == "__main__":
    import sys

    if len(sys.argv) > 1:
        rewrite(sys.argv[1])
    else:
        print(markdown(), end="")
