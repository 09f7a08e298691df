"""What a learner can choose when quantizing, each with its help text. `None` means "the method's
default" (gptq.DEFAULTS / awq.DEFAULTS, or gptqmodel's own); the resolved values are recorded in
the cache key (cache.Settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from ..core import validate
from ..core.errors import InvalidSetting
from ..core.settings import setting

GPTQ, AWQ, BOTH = ("gptq",), ("awq",), ("gptq", "awq")


@dataclass(frozen=True)
class QuantizeSettings:
    """Options of `llamalab.quantize()`; pass an instance as `settings=` or the
    fields as keywords."""

    bits: int | None = setting(
        None,
        "Bits per weight: 4 or 8 for GPTQ, 4 for AWQ. None: the scheme's own "
        "(gptq-8bit → 8, gptq → 4).",
    )
    group_size: int | None = setting(
        None,
        "How many weights of a row share one scale. Smaller groups follow "
        "the weights more closely and cost a little more memory. None: 128 "
        "when it divides every layer's input size, else 64, else 32; "
        "-1: one scale per row.",
    )
    calibration: str | list[str] | None = setting(
        None,
        "Text run through the model so the quantizer sees typical "
        "activations. None: the bundled public-domain text "
        "(KJV Genesis 1–25); a string or a list of strings.",
    )
    samples: int | None = setting(
        None,
        "Calibration rows. None: 32 for GPTQ, 8 for AWQ (its clip search samples "
        "a fixed 512 tokens anyway).",
    )
    seq_len: int | None = setting(None, "Tokens per calibration row (≥ 16). None: 256.")
    batch_size: int | None = setting(None, "Calibration rows per forward pass. None: 4.")
    device: str = setting(
        "auto",
        "Where the quantizer runs: 'auto' (a GPU if torch sees one), 'cpu', 'cuda' or 'cuda:N'.",
    )
    hugepages: bool = setting(
        True,
        "Run the quantizer with torch's transparent-huge-page allocator: the same "
        "checkpoint, fewer page faults (AWQ several times faster on CPU).",
    )
    # gptqmodel's own config fields; None leaves the method's default
    true_sequential: bool | None = setting(
        None,
        "Quantize a layer's linears one after another, each seeing the "
        "already-quantized outputs (more forward passes). The kit's GPTQ "
        "default is False: same perplexity here, ~2× faster.",
        methods=BOTH,
    )
    desc_act: bool | None = setting(
        None,
        "Act-order: quantize a layer's columns from the most to the least "
        "active input, so the important ones are rounded first.",
        methods=GPTQ,
    )
    sym: bool | None = setting(
        None, "Symmetric grid (no zero point) instead of an asymmetric one.", methods=BOTH
    )
    damp_percent: float | None = setting(
        None,
        "Damping added to the Hessian's diagonal, as a fraction of its mean: "
        "higher is more stable, lower follows the data more closely.",
        methods=GPTQ,
    )
    mse: float | None = setting(
        None,
        "Search each group's clipping range for the least error (0 = off; a norm "
        "such as 2.4 turns it on, slower).",
        methods=GPTQ,
    )
    static_groups: bool | None = setting(
        None,
        "With desc_act, fix each group's scale before reordering (faster inference kernels).",
        methods=GPTQ,
    )
    act_group_aware: bool | None = setting(
        None,
        "Order columns by activation inside each group only (most of "
        "act-order's gain, no reordering across groups).",
        methods=GPTQ,
    )
    scale_search_chunked_activations: bool | None = setting(
        None,
        "Run AWQ's scale search over the activations in chunks (less memory, a little slower).",
        methods=AWQ,
    )

    def __post_init__(self):
        for name in ("bits", "samples", "seq_len", "batch_size"):
            if getattr(self, name) is not None:
                validate.integer(name, getattr(self, name), lo=16 if name == "seq_len" else 1)
        if self.group_size is not None:
            validate.integer("group_size", self.group_size, lo=-1)
        validate.flag("hugepages", self.hugepages)
        for name in (
            "true_sequential",
            "desc_act",
            "sym",
            "static_groups",
            "act_group_aware",
            "scale_search_chunked_activations",
        ):
            if getattr(self, name) is not None:
                validate.flag(name, getattr(self, name))
        if self.damp_percent is not None:
            validate.number("damp_percent", self.damp_percent, lo=0.0, hi=1.0)
        if self.mse is not None:
            validate.number("mse", self.mse, lo=0.0)
        if not isinstance(self.device, str) or not re.fullmatch(
            r"auto|cpu|cuda(:\d+)?", self.device
        ):
            raise InvalidSetting(
                f"device={self.device!r} is not a device quantize() can use.",
                "Use 'auto', 'cpu', 'cuda' or 'cuda:N'.",
            )

    def options(self, method: str) -> dict:
        """The gptqmodel config fields that were set, refusing those the method does not take."""
        out = {}
        for f in fields(self):
            value, methods = getattr(self, f.name), f.metadata.get("methods")
            if methods is None or value is None:
                continue
            if method not in methods:
                allowed = ", ".join(option_names(method))
                raise InvalidSetting(
                    f"{f.name}={value!r} is not an option of {method.upper()}.",
                    f"{method.upper()} takes: {allowed}.",
                )
            out[f.name] = value
        return out


def option_names(method: str) -> list[str]:
    """The gptqmodel config fields a learner may set for `method`."""
    return [f.name for f in fields(QuantizeSettings) if method in f.metadata.get("methods", ())]
