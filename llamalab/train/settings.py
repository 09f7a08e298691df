"""The hyper-parameters of one fine-tuning run, each with the help text the widgets
and docs show."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core import validate
from ..core.errors import InvalidSetting
from ..core.settings import setting

TARGETS = {"guide": ["q_proj", "v_proj"], "all-linear": "all-linear"}
SCHEDULES = ("linear", "constant", "cosine")


@dataclass(frozen=True)
class FinetuneSettings:
    """What `llamalab.finetune(...)` accepts as keyword arguments (same names, same help)."""

    r: int = setting(
        16,
        "LoRA rank: each adapted matrix W gets a trainable update B·A of rank r "
        "(more rank = more capacity and more parameters). Not used by method='full'.",
    )
    alpha: int = setting(
        32, "LoRA scaling: the update is multiplied by alpha / r (the guide uses alpha = 2·r)."
    )
    dropout: float = setting(0.05, "Dropout on the LoRA path's input during training (0 = off).")
    target_modules: str = setting(
        "guide",
        "Which linears get adapters: 'guide' = q_proj and v_proj (the guide's "
        "preset), 'all-linear' = every linear except the output layer, or a "
        "comma-separated list of module names.",
    )
    steps: int = setting(60, "Optimizer steps to train (ignored when epochs is set).")
    epochs: float | None = setting(None, "Passes over the training data; overrides steps when set.")
    lr: float = setting(
        2e-3, "Peak learning rate of AdamW (LoRA tolerates ~10× the rate of full fine-tuning)."
    )
    schedule: str = setting(
        "linear",
        "Learning-rate schedule after warm-up: 'linear' decay to 0, 'cosine' or 'constant'.",
    )
    warmup_steps: int = setting(5, "Steps of linear warm-up from 0 to lr.")
    batch: int = setting(8, "Examples per forward/backward pass.")
    grad_accum: int = setting(
        1,
        "Passes whose gradients add up before one optimizer step "
        "(effective batch = batch × grad_accum).",
    )
    max_length: int = setting(
        128, "Longest example in tokens after the chat template; a longer row is an error."
    )
    weight_decay: float = setting(0.0, "AdamW weight decay.")
    max_grad_norm: float = setting(1.0, "Clip the gradient norm to this value (0 = no clipping).")
    eval_every: int = setting(
        10, "Compute the loss on the held-out split every this many steps (0 = never)."
    )
    eval_fraction: float = setting(
        0.1, "Share of the data held out for eval loss when no eval data is passed."
    )
    seed: int = setting(0, "Seed for the adapter initialisation, shuffling and dropout.")
    threads: int | None = setting(
        None, "torch CPU threads while training (None = leave torch's setting)."
    )

    def __post_init__(self):
        validate.integer("r", self.r, 1, 4096)
        validate.number("alpha", self.alpha, lo=0.0)
        validate.number("dropout", self.dropout, 0.0, 0.99)
        validate.integer("steps", self.steps, 1)
        if self.epochs is not None:
            validate.number("epochs", self.epochs, lo=0.01)
        validate.number("lr", self.lr, lo=1e-12)
        validate.choice("schedule", self.schedule, SCHEDULES)
        validate.integer("warmup_steps", self.warmup_steps, 0)
        validate.integer("batch", self.batch, 1, 4096)
        validate.integer("grad_accum", self.grad_accum, 1, 4096)
        validate.integer("max_length", self.max_length, 8, 1 << 20)
        validate.number("weight_decay", self.weight_decay, lo=0.0)
        validate.number("max_grad_norm", self.max_grad_norm, lo=0.0)
        validate.integer("eval_every", self.eval_every, 0)
        validate.number("eval_fraction", self.eval_fraction, 0.0, 0.5)
        validate.integer("seed", self.seed, 0, 2**32 - 1)
        if self.threads is not None:
            validate.integer("threads", self.threads, 1, 1024)
        target_modules(self.target_modules)

    def to_dict(self) -> dict:
        return asdict(self)


def target_modules(value: str):
    """'guide' / 'all-linear' / 'a,b,c' → what peft's LoraConfig takes."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidSetting(
            f"target_modules={value!r} is not a preset or a list of names.",
            "Use 'guide', 'all-linear' or e.g. 'q_proj,k_proj,v_proj,o_proj'.",
        )
    if value in TARGETS:
        return TARGETS[value]
    return [x.strip() for x in value.split(",") if x.strip()]
