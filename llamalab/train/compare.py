"""The guide's claims, measured on one machine: full vs LoRA (guide preset) vs LoRA (all-linear) vs
QLoRA on the same data and steps budget — trainable parameters, peak memory measured vs estimated,
seconds per step, task score before → after, and forgetting (perplexity on the held-out general text
before → after)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import training
from ..core.errors import LlamalabError
from ..measure.evaluate import Evaluation, Evaluator
from ..measure.quality import perplexity
from .score import house_score
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
    evaluation=None,
    on_row=None,
    **overrides,
) -> pd.DataFrame:
    """One row per variant (names of VARIANTS): each trains a fresh copy of `model` for `steps`
    steps. A variant whose estimate does not fit (or that cannot train here) gets its reason
    instead of numbers. `settings` (a FinetuneSettings) and/or its fields as keywords apply to every
    variant; each method trains at its own learning rate (catalog/training_methods.toml) unless
    `lr` is given. schemes: the base scheme per method, e.g. {"lora": "bf16"} (default: each
    method's base, fp32 or nf4). max_new_tokens: per held-out reply when scoring.
    `evaluation=(data, scorer)` (or an Evaluator) also scores each variant on the learner's own task
    before and after training: the task_score_before / task_score_after columns."""
    import pandas as pd

    task = Evaluator.of(evaluation) if evaluation is not None else None
    house = Evaluator(heldout, "house_format", n=n_heldout, max_new_tokens=max_new_tokens)
    rows, before = [], {}
    for name in variants:
        if name not in VARIANTS:
            raise LlamalabError(f"Unknown variant {name!r}.", f"Known: {', '.join(VARIANTS)}.")
        m = training.method(VARIANTS[name]["method"])
        kw = {"lr": m.lr, **overrides, **VARIANTS[name], "steps": steps, "device": device}
        kw["scheme"] = (schemes or {}).get(m.name, m.base)
        scoring = (house, task)
        row = _one(model, data, name, settings, kw, scoring, ppl_tokens, memory_budget, before)
        rows.append(row)
        if on_row:
            on_row(row)
    return pd.DataFrame(rows)


def _one(model, data, name, settings, kw, scoring, ppl_tokens, budget, before) -> dict:
    method, scheme = kw.pop("method"), kw["scheme"]
    house, task = scoring
    try:
        run = finetune(
            model, data, method, settings, memory_budget=budget, start=False, eval_every=0, **kw
        )
    except LlamalabError as e:
        return {"variant": name, "status": "refused", "reason": f"{e.message} {e.fix}"}
    m = run.model
    try:
        if scheme not in before:
            compliance = 100 * house(m).score
            tasked = task(m) if task is not None else None
            before[scheme] = (compliance, perplexity(m, tokens=ppl_tokens).value, tasked)
        run.start()
        run.wait()
        after = house(m)
        ppl = perplexity(m, tokens=ppl_tokens).value
        task_after = task(m) if task is not None else None
    finally:
        m.unload()
    out = row(name, run, before[scheme][:2], after, ppl)
    return {**out, **task_columns(before[scheme][2], task_after)} if task is not None else out


def task_columns(before, after) -> dict:
    """The task columns of a finetune_compare row: the task's score before and after training (two
    Evaluations of the same task), the interval and n of the one after."""
    return {
        "task": after.task,
        "task_score_before": before.score,
        "task_score_after": after.score,
        "task_score_after_low": after.low,
        "task_score_after_high": after.high,
        "task_n": after.n,
    }


def row(name: str, run, before: tuple[float, float], after, perplexity_after: float) -> dict:
    """The table's row for a finished run (e.g. one started by hand or from the TrainerPanel, to sit
    beside finetune_compare's rows): `before` is (compliance %, perplexity) of its base, `after`
    its house-format Evaluation (llamalab.evaluate(model, "house-format-heldout",
    "house_format")) or its Score."""
    s = run.to_dict()
    after = house_score(after) if isinstance(after, Evaluation) else after
    return {
        "variant": name,
        "status": run.status,
        "scheme": run.model.scheme_name,
        "trainable_params": run.trainable_params,
        "adapter_dir": str(run.adapter_dir or ""),  # the trained adapter, to load, export or serve
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
