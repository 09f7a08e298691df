"""The guide's claims, measured on one machine: full vs LoRA (guide preset) vs LoRA (all-linear) vs
QLoRA on the same data and steps budget — trainable parameters, peak memory measured vs estimated,
seconds per step, task score before → after, and forgetting (perplexity on the held-out general text
before → after)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import training
from ..core.errors import LlamalabError
from ..measure.quality import perplexity
from .score import evaluate
from .settings import FinetuneSettings
from .start import finetune

if TYPE_CHECKING:
    import pandas as pd

VARIANTS = {
    "full": dict(method="full"),
    "lora (guide: q,v)": dict(method="lora", target_modules="guide"),
    "lora (all-linear)": dict(method="lora", target_modules="all-linear"),
    "qlora (all-linear)": dict(method="qlora", target_modules="all-linear"),
}


def finetune_compare(
    model="default",
    data="house-format",
    variants=("lora (guide: q,v)", "lora (all-linear)"),
    settings: FinetuneSettings | None = None,
    *,
    steps: int = 30,
    heldout="house-format-heldout",
    n_heldout: int = 20,
    ppl_tokens: int = 512,
    max_new_tokens: int = 24,
    memory_budget: int | None = None,
    schemes: dict | None = None,
    device: str = "auto",
    on_row=None,
    **overrides,
) -> pd.DataFrame:
    """One row per variant (names of VARIANTS): each trains a fresh copy of `model` for `steps`
    steps. A variant whose estimate does not fit (or that cannot train here) gets its reason
    instead of numbers. `settings` (a FinetuneSettings) and/or its fields as keywords apply to every
    variant; each method trains at its own learning rate (catalog/training_methods.toml) unless
    `lr` is given. schemes: the base scheme per method, e.g. {"lora": "bf16"} (default: each
    method's base, fp32 or nf4). max_new_tokens: per held-out reply when scoring."""
    import pandas as pd

    rows, before = [], {}
    for name in variants:
        if name not in VARIANTS:
            raise LlamalabError(f"Unknown variant {name!r}.", f"Known: {', '.join(VARIANTS)}.")
        m = training.method(VARIANTS[name]["method"])
        kw = {"lr": m.lr, **overrides, **VARIANTS[name], "steps": steps, "device": device}
        kw["scheme"] = (schemes or {}).get(m.name, m.base)
        scoring = (heldout, n_heldout, max_new_tokens)
        row = _one(model, data, name, settings, kw, scoring, ppl_tokens, memory_budget, before)
        rows.append(row)
        if on_row:
            on_row(row)
    return pd.DataFrame(rows)


def _one(model, data, name, settings, kw, scoring, ppl_tokens, budget, before) -> dict:
    method, scheme = kw.pop("method"), kw["scheme"]
    heldout, n_heldout, max_new_tokens = scoring
    try:
        run = finetune(
            model, data, method, settings, memory_budget=budget, start=False, eval_every=0, **kw
        )
    except LlamalabError as e:
        return {"variant": name, "status": "refused", "reason": f"{e.message} {e.fix}"}
    m = run.model
    try:
        if scheme not in before:
            score, _ = evaluate(m, heldout, n=n_heldout, max_new_tokens=max_new_tokens)
            before[scheme] = (score.compliance, perplexity(m, tokens=ppl_tokens).value)
        run.start()
        run.wait()
        after, _ = evaluate(m, heldout, n=n_heldout, max_new_tokens=max_new_tokens)
        ppl = perplexity(m, tokens=ppl_tokens).value
    finally:
        m.unload()
    return row(name, run, before[scheme], after, ppl)


def row(name: str, run, before: tuple[float, float], after, perplexity_after: float) -> dict:
    """The table's row for a finished run (e.g. one started by hand or from the TrainerPanel, to sit
    beside finetune_compare's rows): `before` is (compliance %, perplexity) of its base, `after`
    its Score."""
    s = run.to_dict()
    return {
        "variant": name,
        "status": run.status,
        "scheme": run.model.scheme_name,
        "trainable_params": run.trainable_params,
        "trainable_pct": 100 * run.trainable_params / run.total_params,
        "step_s": s["step_s"],
        "peak_train_bytes": s["peak_train_bytes"],
        "estimated_train_bytes": s["estimated_train_bytes"],
        "train_estimate_error_pct": s["train_estimate_error_pct"],
        "compliance_before_pct": before[0],
        "compliance_after_pct": after.compliance,
        "exact_after_pct": after.exact,
        "perplexity_before": before[1],
        "perplexity_after": perplexity_after,
        "final_loss": s["final_loss"],
        "reason": "",
    }
