"""`llamalab.finetune(...)`: check everything that can be checked before training, then start the run."""
from __future__ import annotations

from pathlib import Path

from .. import catalog
from ..errors import InvalidSetting, NotEnoughMemory
from ..estimate import estimate
from ..runtime import load, resolve_device, torch_thread
from ..runtime.loaded import LoadedModel
from ..settings import with_changes
from . import capability
from . import data as D
from .run import (
    FinetuneRun,
    Trainer,
    card_name,
    check_output,
    default_output,
    saved_checkpoint,
    steps_for,
)
from .settings import FinetuneSettings, check_method, target_modules

DEFAULT_SCHEME = {"lora": "fp32", "dora": "fp32", "full": "fp32", "qlora": "nf4"}
ESTIMATE_MODE = {"lora": "lora", "dora": "lora", "full": "full", "qlora": "qlora"}


def finetune(model="default", data="house-format", method: str | None = None, *, eval_data=None,
             scheme: str | None = None, device: str = "auto", output=None, settings: FinetuneSettings | None = None,
             memory_budget: int | None = None, force: bool = False, start: bool = True, resume=None,
             **kwargs) -> FinetuneRun:
    """Fine-tune `model` (a name, a folder or a LoadedModel, trained in place) on chat `data`.

    method: 'lora' (adapters on a float base), 'qlora' (adapters on an nf4 base), 'full' (every weight),
    'dora' (weight-decomposed LoRA). Hyper-parameters: FinetuneSettings' fields as keyword arguments
    (`llamalab.settings.describe(FinetuneSettings)` lists them with their help). The loss is on the
    assistant's tokens only. Refuses (NotEnoughMemory, with the reason) when the training estimate does not
    fit `memory_budget` (default: the memory available now) unless force=True. Returns a FinetuneRun that
    trains in the background: `run.wait()`, `run.stop()`, `run.history`.

    resume: the output folder of a stopped run (from this or another process): its method and settings come
    from the checkpoint (keyword arguments change them, e.g. steps=a new total), pass the same model and data;
    the step counter and history continue.
    """
    saved = None
    if resume is not None:
        output, saved = saved_checkpoint(resume)
        method = _resumed_method(method, saved)
        settings = settings or FinetuneSettings(**saved["settings"])
        scheme = scheme or saved.get("base_scheme")
    method = check_method(method or "lora")
    settings = with_changes(settings or FinetuneSettings(), **kwargs)
    out = check_output(output)
    base_card = catalog.card(model.card if isinstance(model, LoadedModel) else model)
    device = model.device if isinstance(model, LoadedModel) else resolve_device(device)
    scheme_name = model.scheme.name if isinstance(model, LoadedModel) else (scheme or DEFAULT_SCHEME[method])
    capability.check(method, scheme_name, device)
    convs = D.conversations(data)                      # bad rows raise here, before any model loads
    eval_convs = D.conversations(eval_data) if eval_data is not None else None
    est = train_estimate(base_card, scheme_name, method, settings, device, settings.max_length)
    _check_memory(est, device, memory_budget, force, method)
    loaded = model if isinstance(model, LoadedModel) else load(model, scheme_name, device)
    if saved is not None:
        _check_same_base(loaded, saved)
    run = torch_thread.run(_prepare, loaded, method, settings, convs, eval_convs, est,
                           out or default_output(card_name(loaded), method), data)
    if saved is not None:
        run.restore()
    if start:
        run.start()
    return run


def train_estimate(card, scheme: str, method: str, settings: FinetuneSettings, device: str, length: int):
    """The estimator's training breakdown for these settings; `length` = the longest row of a micro-batch
    (max_length before the data is tokenized, the longest real row after: rows are padded per batch)."""
    kw = {"device": device, "lora_rank": settings.r, "gradient_checkpointing": False}
    try:
        return estimate(card, scheme, length, settings.batch, ESTIMATE_MODE[method],
                        target_modules=target_modules(settings.target_modules), **kw)
    except InvalidSetting:      # module names the catalog's Llama-style layout does not know: bound it above
        return estimate(card, scheme, length, settings.batch, ESTIMATE_MODE[method], **kw)


def _resumed_method(method, saved: dict) -> str:
    if method is not None and method != saved["method"]:
        raise InvalidSetting(f"method={method!r} but the checkpoint was trained with {saved['method']!r}.",
                             "Leave method out when resuming (it comes from the checkpoint).")
    return saved["method"]


def _check_same_base(loaded: LoadedModel, saved: dict) -> None:
    """A checkpoint resumes only over the base it was trained on (same weights, same scheme)."""
    here = (_fingerprint(loaded), loaded.scheme.name)
    there = (saved.get("base_fingerprint"), saved.get("base_scheme"))
    if here != there:
        raise InvalidSetting(f"The checkpoint was trained over {saved.get('base_model')} / {there[1]} "
                             f"({there[0]}), not this base ({here[1]}, {here[0]}).",
                             "Pass the same model and scheme as the stopped run.")


def _check_memory(est, device: str, budget, force: bool, method: str) -> None:
    if force:
        return
    from ..hardware import hardware
    available = int(budget) if budget is not None else hardware().budget_bytes(device)
    if est.peak_bytes > available:
        hint = "method='lora' or 'qlora'" if method == "full" else "a smaller batch or max_length"
        err = NotEnoughMemory(est.peak_bytes, available, "this machine's RAM" if device == "cpu" else device)
        err.fix = (f"The training estimate ({', '.join(f'{k} {v / 1e9:.2f} GB' for k, v in est.breakdown.items() if v)}) "
                   f"does not fit. Try {hint}, or force=True to try anyway.")
        err.args = (f"{err.message}\n{err.fix}",)
        raise err


def _prepare(loaded: LoadedModel, method, settings: FinetuneSettings, convs, eval_convs, est, out: Path,
             data) -> FinetuneRun:
    """Tokenize, wrap the model with peft (or unfreeze it), build the optimizer: on the torch thread."""
    import torch
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    tok = loaded.tokenizer
    examples = D.tokenize(tok, convs, settings.max_length)
    if eval_convs is not None:
        train, held = examples, D.tokenize(tok, eval_convs, settings.max_length)
    else:
        train, held = D.split(examples, settings.eval_fraction if settings.eval_every else 0.0, settings.seed)
    if len(train) < settings.batch:
        raise InvalidSetting(f"{len(train)} training rows are fewer than batch={settings.batch}.",
                             "Pass more rows or a smaller batch.")
    total_steps = steps_for(settings, len(train))
    est = train_estimate(loaded.card, loaded.scheme.name, method, settings, loaded.device,
                         max(len(e.input_ids) for e in train))
    trainer = Trainer(loaded, method, settings, train, held, total_steps)
    model = loaded.model
    if method == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        trainer.params = [p for p in model.parameters() if p.requires_grad]
    else:
        trainer.peft_model = _wrap(model, method, settings)
        loaded.engine.peft_model = trainer.peft_model     # adapters.py and merge.py find it here
        trainer.params = [p for p in trainer.peft_model.parameters() if p.requires_grad]
    trainer.optimizer = torch.optim.AdamW(trainer.params, lr=settings.lr, weight_decay=settings.weight_decay)
    from transformers import get_scheduler
    trainer.scheduler = get_scheduler(settings.schedule, trainer.optimizer, settings.warmup_steps, total_steps)
    trainable = sum(p.numel() for p in trainer.params)
    # 4-bit and GPTQ layers store several weights per element: count the base from its card, not its tensors
    total = trainable if method == "full" or not loaded.card.params else loaded.card.params + trainable
    return FinetuneRun(model=loaded, method=method, settings=settings, output_dir=Path(out), estimate=est,
                       trainable_params=trainable, total_params=total, train_rows=len(train), eval_rows=len(held),
                       total_steps=total_steps, base_fingerprint=_fingerprint(loaded),
                       data_name=str(data) if isinstance(data, (str, Path)) else type(data).__name__,
                       _trainer=trainer)


def _wrap(model, method: str, s: FinetuneSettings):
    """The model with peft's LoRA (or DoRA) layers injected in place; only the adapters train."""
    from peft import LoraConfig, get_peft_model
    if getattr(model, "peft_config", None):
        raise InvalidSetting("This model already carries adapters.",
                             "Load the base again (llamalab.load) or unload its adapters first.")
    if method == "qlora":
        for p in model.parameters():     # peft's prepare_model_for_kbit_training without gradient checkpointing
            p.requires_grad_(False)
    targets = target_modules(s.target_modules)
    if targets == "all-linear" and getattr(model.config, "quantization_config", None):
        targets = _linear_names(model)      # peft's "all-linear" sees only nn.Linear, not GPTQ's packed layers
    config = LoraConfig(r=s.r, lora_alpha=s.alpha, lora_dropout=s.dropout, target_modules=targets,
                        use_dora=method == "dora", task_type="CAUSAL_LM", bias="none")
    return get_peft_model(model, config)


def _linear_names(model) -> list[str]:
    """Names of every linear-like layer (a class name containing 'Linear'), the output layer excepted."""
    out = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules()
                   if "Linear" in type(mod).__name__ and mod is not out and name})


def _fingerprint(loaded: LoadedModel) -> str:
    from ..runtime.store import model_fingerprint
    try:
        return model_fingerprint(Path(loaded.path))
    except OSError:
        return f"unknown:{loaded.card.name}"
