"""`llamalab.finetune(...)`: check everything that can be checked before training,
then start the run."""

from __future__ import annotations

from pathlib import Path

from .. import catalog
from ..catalog import training
from ..core import torch_thread
from ..core.errors import InvalidSetting, NotEnoughMemory
from ..core.hardware import hardware
from ..core.settings import with_changes
from ..engines.base import Adapters, require
from ..plan.estimator import estimate
from ..runtime import load, resolve_device
from ..runtime.files.store import model_fingerprint
from ..runtime.loaded import LoadedModel
from . import data as D
from .run import FinetuneRun, check_output, default_output, saved_checkpoint, steps_for
from .settings import FinetuneSettings, target_modules
from .trainer import Trainer


def finetune(
    model="default",
    data="house-format",
    method: str | None = None,
    settings: FinetuneSettings | None = None,
    *,
    eval_data=None,
    scheme: str | None = None,
    device: str = "auto",
    output=None,
    memory_budget: int | None = None,
    force: bool = False,
    start: bool = True,
    resume=None,
    **overrides,
) -> FinetuneRun:
    """Fine-tune `model` (a name, a folder or a LoadedModel, trained in place) on chat `data`.

    method: 'lora' (adapters on a float base), 'qlora' (adapters on an nf4 base), 'full'
    (every weight), 'dora' (weight-decomposed LoRA); `llamalab.training_capabilities()` says which
    runs where.
    settings: a FinetuneSettings and/or its fields as keywords (`steps=20, r=8`;
    `describe(FinetuneSettings)` lists them with their help). The loss is on the assistant's tokens
    only. Refuses (NotEnoughMemory, with the reason) when the training estimate does not fit
    `memory_budget` (default: the memory available now) unless force=True. Returns a FinetuneRun
    training in the background: `run.wait()`, `run.stop()`, `run.history`.

    resume: the output folder of a stopped run (from this or another process): its method and
    settings come from the checkpoint (keywords change them, e.g. steps=a new total); pass the same
    model and data.
    """
    saved = None
    if resume is not None:
        output, saved = saved_checkpoint(resume)
        method = _resumed_method(method, saved)
        settings = settings or FinetuneSettings(**saved["settings"])
        scheme = scheme or saved.get("base_scheme")
    m = training.method(method or "lora")
    settings = with_changes(settings or FinetuneSettings(), **overrides)
    out = check_output(output)
    given = isinstance(model, LoadedModel)
    base_card = catalog.card(model.card if given else model)
    device = model.device if given else resolve_device(device)
    scheme_name = model.scheme_name if given else (scheme or m.base)
    training.check(m.name, scheme_name, device)
    convs = D.conversations(data)  # bad rows raise here, before any model loads
    eval_convs = D.conversations(eval_data) if eval_data is not None else None
    est = train_estimate(base_card, scheme_name, m, settings, device, settings.max_length)
    _check_memory(est, device, memory_budget, force, m)
    loaded = model if given else load(model, scheme_name, device)
    require(
        loaded.engine,
        Adapters,
        "be fine-tuned here",
        "Load a transformers scheme (fp32/bf16/fp16, nf4, gptq).",
    )
    if saved is not None:
        _check_same_base(loaded, saved)
    run = torch_thread.run(
        _prepare,
        loaded,
        m,
        settings,
        convs,
        eval_convs,
        out or default_output(loaded.name, m.name),
        data,
    )
    if saved is not None:
        run.restore()
    if start:
        run.start()
    return run


def train_estimate(
    card, scheme: str, method: training.Method, settings: FinetuneSettings, device: str, length: int
):
    """The estimator's training breakdown for these settings; `length` = the longest row of a
    micro-batch (max_length before the data is tokenized, the longest real row after: rows are
    padded per batch)."""
    kw = {"device": device, "lora_rank": settings.r, "gradient_checkpointing": False}
    try:
        return estimate(
            card,
            scheme,
            length,
            settings.batch,
            method.estimate,
            target_modules=target_modules(settings.target_modules),
            **kw,
        )
    except (
        InvalidSetting
    ):  # module names the catalog's Llama-style layout does not know: bound it above
        return estimate(card, scheme, length, settings.batch, method.estimate, **kw)


def _resumed_method(method, saved: dict) -> str:
    if method is not None and method != saved["method"]:
        raise InvalidSetting(
            f"method={method!r} but the checkpoint was trained with {saved['method']!r}.",
            "Leave method out when resuming (it comes from the checkpoint).",
        )
    return saved["method"]


def _check_same_base(loaded: LoadedModel, saved: dict) -> None:
    """A checkpoint resumes only over the base it was trained on (same weights, same scheme)."""
    here = (_fingerprint(loaded), loaded.scheme_name)
    there = (saved.get("base_fingerprint"), saved.get("base_scheme"))
    if here != there:
        raise InvalidSetting(
            f"The checkpoint was trained over {saved.get('base_model')} / {there[1]} "
            f"({there[0]}), not this base ({here[1]}, {here[0]}).",
            "Pass the same model and scheme as the stopped run.",
        )


def _check_memory(est, device: str, budget, force: bool, method: training.Method) -> None:
    if force:
        return
    available = int(budget) if budget is not None else hardware().budget_bytes(device)
    if est.peak_bytes > available:
        hint = "a smaller batch or max_length" if method.adapters else "method='lora' or 'qlora'"
        err = NotEnoughMemory(
            est.peak_bytes, available, "this machine's RAM" if device == "cpu" else device
        )
        parts = ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in est.breakdown.items() if v)
        err.fix = (
            f"The training estimate ({parts}) does not fit. Try {hint}, "
            "or force=True to try anyway."
        )
        err.args = (f"{err.message}\n{err.fix}",)
        raise err


def _prepare(
    loaded: LoadedModel,
    method: training.Method,
    settings: FinetuneSettings,
    convs,
    eval_convs,
    out: Path,
    data,
) -> FinetuneRun:
    """Tokenize, wrap the model with peft (or unfreeze it), build the optimizer:
    on the torch thread."""
    import torch
    from transformers import get_scheduler

    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    engine = loaded.engine
    examples = D.tokenize(engine.tokenizer, convs, settings.max_length)
    if eval_convs is not None:
        train, held = examples, D.tokenize(engine.tokenizer, eval_convs, settings.max_length)
    else:
        train, held = D.split(
            examples, settings.eval_fraction if settings.eval_every else 0.0, settings.seed
        )
    if len(train) < settings.batch:
        raise InvalidSetting(
            f"{len(train)} training rows are fewer than batch={settings.batch}.",
            "Pass more rows or a smaller batch.",
        )
    total_steps = steps_for(settings, len(train))
    est = train_estimate(
        loaded.card,
        loaded.scheme_name,
        method,
        settings,
        loaded.device,
        max(len(e.input_ids) for e in train),
    )
    trainer = Trainer(engine, method, settings, train, held, total_steps)
    if method.adapters:
        engine.wrap_for_training(_lora_config(engine.model, method, settings))
    else:
        for p in engine.model.parameters():
            p.requires_grad_(True)
    trainer.params = [p for p in trainer.model.parameters() if p.requires_grad]
    trainer.optimizer = torch.optim.AdamW(
        trainer.params, lr=settings.lr, weight_decay=settings.weight_decay
    )
    trainer.scheduler = get_scheduler(
        settings.schedule, trainer.optimizer, settings.warmup_steps, total_steps
    )
    trainable = sum(p.numel() for p in trainer.params)
    # 4-bit and GPTQ layers store several weights per element: count the base from its
    # card, not its tensors
    total = loaded.card.params + trainable if method.adapters and loaded.card.params else trainable
    return FinetuneRun(
        model=loaded,
        method=method,
        settings=settings,
        output_dir=Path(out),
        estimate=est,
        trainable_params=trainable,
        total_params=total,
        train_rows=len(train),
        eval_rows=len(held),
        total_steps=total_steps,
        base_fingerprint=_fingerprint(loaded),
        data_name=str(data) if isinstance(data, (str, Path)) else type(data).__name__,
        _trainer=trainer,
    )


def _lora_config(model, method: training.Method, s: FinetuneSettings):
    """peft's LoraConfig for these settings; only the adapters train."""
    from peft import LoraConfig

    if method.freeze:  # peft's prepare_model_for_kbit_training without gradient checkpointing
        for p in model.parameters():
            p.requires_grad_(False)
    targets = target_modules(s.target_modules)
    if targets == "all-linear" and getattr(model.config, "quantization_config", None):
        targets = _linear_names(
            model
        )  # peft's "all-linear" sees only nn.Linear, not GPTQ's packed layers
    return LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=targets,
        use_dora=method.dora,
        task_type="CAUSAL_LM",
        bias="none",
    )


def _linear_names(model) -> list[str]:
    """Names of every linear-like layer (a class name containing 'Linear'),
    the output layer excepted."""
    out = model.get_output_embeddings()
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, mod in model.named_modules()
            if "Linear" in type(mod).__name__ and mod is not out and name
        }
    )


def _fingerprint(loaded: LoadedModel) -> str:
    try:
        return model_fingerprint(Path(loaded.path))
    except OSError:
        return f"unknown:{loaded.name}"
