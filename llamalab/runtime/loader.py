"""Loading models: pick the backend for (scheme, device), check the estimate fits, load, measure."""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .. import catalog
from ..catalog import ModelCard, Scheme
from ..catalog.training import trains
from ..core import memory, torch_thread, validate
from ..core.errors import InvalidSetting, LlamalabError, NotEnoughMemory, SchemeUnavailable
from ..core.hardware import hardware
from ..engines.base import Adapters, require
from ..plan.choice import best_scheme
from ..plan.estimator import estimate
from . import backends
from .files.source import NeedsConversion, resolve
from .files.store import model_fingerprint
from .loaded import LoadedModel
from .room import room_model_or_none

if TYPE_CHECKING:
    import pandas as pd

DEVICES = ("cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """'auto' → 'cuda' when torch sees a GPU, else 'cpu'; 'cuda:1' is kept as is."""
    validate.text("device", device)
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise InvalidSetting(
            f"Unknown device {device!r}.", "Use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        )
    return device


def check_scheme(s: Scheme, device: str) -> None:
    """Raise SchemeUnavailable (with the reason and an alternative) or BackendMissing."""
    kind = device.split(":")[0]
    cell = s.devices.get(kind, {})
    if not cell.get("backend"):
        raise SchemeUnavailable(
            s.name, kind, cell.get("reason", "not supported"), _alternative(s, kind)
        )
    mod = backends.module(cell["backend"])
    for package, install in mod.REQUIRES.get(kind, ()):
        backends.require(package, install, f"{s.name} on {kind} needs it")
    ok, reason = backends.availability(cell["backend"], device)
    if not ok:
        raise SchemeUnavailable(s.name, kind, reason, _alternative(s, kind))


def _alternative(s: Scheme, device: str) -> str | None:
    """The closest scheme (by fidelity rank) that does run on this device here."""
    runnable = [
        x
        for x in map(catalog.scheme, catalog.scheme_names())
        if x.name != s.name and runs(x, device)
    ]
    runnable.sort(key=lambda x: (abs(x.rank - s.rank), -x.rank))
    return runnable[0].name if runnable else None


def runs(s: Scheme, device: str) -> bool:
    """True if `s` can run on `device` here (its backend is installed and available)."""
    backend = s.backend_for(device)
    return bool(backend) and backends.availability(backend, device)[0]


class LeftOut(str):
    """A default the caller did not write (told apart by identity): load() with neither model nor
    scheme goes to the room's server when one is in use (llamalab.use_room)."""


DEFAULT_MODEL, DEFAULT_SCHEME = LeftOut("default"), LeftOut("bf16")


def load(
    model: str | ModelCard = DEFAULT_MODEL,
    scheme: str | Scheme = DEFAULT_SCHEME,
    device: str = "auto",
    force: bool = False,
    trust_remote_code: bool = False,
    context: int | None = None,
    adapter=None,
    **options,
) -> LoadedModel:
    """Load `model` under `scheme` on `device` and measure the load.

    `context`: the tokens it must hold (prompt + reply): the estimate is checked for it (default:
    the model's own, at most 4096), and a llama.cpp engine gets a window that size. Refuses
    (NotEnoughMemory, naming a scheme that would fit) when the estimate exceeds the memory available
    now, unless force=True. `trust_remote_code` stays off unless you ask for it. The load runs on
    the one torch thread (llamalab/core/torch_thread.py).
    `adapter`: a folder with a saved peft adapter (e.g. `run.adapter_dir`), attached to the loaded
    model; generate()/stream() then use it. For a GGUF base, a GGUF adapter file
    (`export_gguf(adapter_dir)`), applied by llama.cpp.
    In a room (`llamalab.use_room(url)` or LLAMALAB_ROOM set), load() naming neither model nor
    scheme returns the room's served model instead: nothing loads here, torch stays out.
    """
    explicit = model is not DEFAULT_MODEL or scheme is not DEFAULT_SCHEME or adapter is not None
    served = room_model_or_none(explicit)
    if served is not None:
        return served
    validate.flag("force", force)
    validate.flag("trust_remote_code", trust_remote_code)
    if context is not None:
        validate.integer("context", context, lo=1)
    c, s = catalog.card(model), catalog.scheme(scheme, model)
    device = resolve_device(device)
    check_scheme(s, device)
    ctx = context or min(c.context, 4096)
    est = estimate(c, s, ctx, device=device)
    if not force:
        _check_memory(c, s, est, device, ctx)
    name = s.backend_for(device)
    options = {**options, "context": context} if context is not None else options
    return torch_thread.run(
        _load, model, c, s, device, est, name, trust_remote_code, options, adapter
    )


def _load(
    model,
    c: ModelCard,
    s: Scheme,
    device: str,
    est,
    name: str,
    trust_remote_code: bool,
    options: dict,
    adapter=None,
) -> LoadedModel:
    """Find (or convert) the files, load them with the backend and measure: on the torch thread."""
    _quiet_known_noise()
    mod = backends.module(name)
    path = resolve(model, c, s) if getattr(mod, "NEEDS_FILES", True) else ""
    if isinstance(path, NeedsConversion):  # resolve() only finds; writing the GGUF is load()'s call
        from .files.gguf import convert

        path = str(convert(path.model, path.outtype))
    if adapter is not None and str(adapter).endswith(".gguf"):  # llama.cpp applies it itself
        if name != "gguf":
            raise InvalidSetting(
                f"{Path(adapter).name} is a GGUF adapter; scheme {s.name} loads with {name}.",
                "Load a GGUF base (scheme='gguf' or its type, e.g. 'f16') for a GGUF adapter, "
                "or pass the peft adapter folder for a transformers scheme.",
            )
        options, adapter_gguf, adapter = {**options, "lora_path": str(adapter)}, adapter, None
    else:
        adapter_gguf = None
    with memory.Growth(device) as mem:
        t0 = time.perf_counter()
        engine = mod.load(path, s, device, trust_remote_code=trust_remote_code, **options)
        if adapter is not None:
            attach_adapter(engine, adapter, path)
        seconds = time.perf_counter() - t0
    remote = (
        engine.remote
    )  # a backend may serve a model from elsewhere: nothing of it is in this process
    return LoadedModel(
        engine=engine,
        card=c,
        scheme=s,
        device=device,
        load_s=seconds,
        weights_memory_bytes=engine.weights_bytes(),
        load_memory_delta_bytes=None if remote else mem.bytes,
        load_memory_kind=memory.REMOTE if remote else mem.kind,
        load_peak_bytes=None if remote else mem.peak_bytes,
        load_anon_bytes=None if remote else mem.anon_bytes,
        load_file_bytes=None if remote else mem.file_bytes,
        load_anon_peak_bytes=None if remote else mem.anon_peak_bytes,
        load_container_bytes=None if remote else mem.container_bytes,
        estimate=est,
        path=str(path),
        backend=name,
        adapter=str(adapter or adapter_gguf or ""),
    )


def attach_adapter(engine, adapter, base_path, name: str = "default") -> None:
    """Inject a saved peft adapter into the engine's model in place (generation is unchanged); warn
    when the adapter was trained on other base weights (its llamalab_finetune.json keeps their
    fingerprint)."""
    folder = Path(adapter)
    require(
        engine,
        Adapters,
        "take a peft adapter",
        "Load a transformers scheme (fp32/bf16/fp16, nf4, gptq) to attach an adapter.",
    )
    if not (folder / "adapter_config.json").is_file():
        raise InvalidSetting(
            f"{folder} holds no peft adapter (adapter_config.json).",
            "Pass the folder a fine-tuning run saved (run.adapter_dir).",
        )
    manifest = folder / "llamalab_finetune.json"
    if manifest.is_file():
        trained_on = json.loads(manifest.read_text()).get("base_fingerprint")
        try:
            here = model_fingerprint(Path(base_path))
        except OSError:
            here = None
        if trained_on and here and trained_on != here:
            warnings.warn(
                f"The adapter in {folder} was trained on {trained_on}, "
                f"not on these weights ({here}).",
                stacklevel=3,
            )
    engine.attach_adapter(str(folder), name)


def _quiet_known_noise() -> None:
    """Logs that are noise for a learner on a CPU machine: torchao's missing CUDA-only extensions,
    torch's pytree deprecation (both whenever transformers imports torchao), and bitsandbytes'
    optional AVX512-BF16 kernel it would fetch from the Hub (`kernels` package; never offline).
    Called by load(), not at import: importing llamalab changes no one else's logging."""
    for name in ("torchao", "torch.utils._pytree", "bitsandbytes.backends.cpu.ops"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _check_memory(c: ModelCard, s: Scheme, est, device: str, ctx: int) -> None:
    hw = hardware()
    available = hw.budget_bytes(device)
    # On CPU the Python runtime is already resident (in this process), so it is not needed again.
    needed = est.peak_bytes - (est.breakdown["overhead"] if device == "cpu" else 0)
    if needed > available:
        fits = best_scheme(
            c,
            available + (est.breakdown["overhead"] if device == "cpu" else 0),
            ctx,
            candidates=[n for n in catalog.scheme_names() if runs(catalog.scheme(n), device)],
            device=device,
        )
        raise NotEnoughMemory(
            needed, available, "this machine's RAM" if device == "cpu" else device, fits
        )


def capabilities() -> pd.DataFrame:
    """The scheme × device capability table, with the reason for every cell that cannot run here;
    `trains` lists the fine-tuning methods that train over the scheme on the device
    (catalog/training_methods.toml), `trains_reason` says why none does (a scheme that cannot run
    here cannot train here either)."""
    import pandas as pd

    rows = []
    for s in map(catalog.scheme, catalog.scheme_names()):
        for dev in DEVICES:
            backend = s.backend_for(dev)
            try:
                if backend:
                    check_scheme(s, dev)
                ok, reason = (
                    (True, "")
                    if backend
                    else (False, s.devices.get(dev, {}).get("reason", "not supported"))
                )
            except LlamalabError as e:
                ok, reason = False, getattr(e, "reason", e.message)
            methods, why = (
                trains(s.name, dev) if ok else ([], f"the scheme does not run here: {reason}")
            )
            rows.append(
                {
                    "scheme": s.name,
                    "device": dev,
                    "family": s.family,
                    "bits": s.bits,
                    "bits_per_weight": round(s.bits_per_weight(), 3),
                    "backend": backend,
                    "available": ok,
                    "reason": reason,
                    "trains": ", ".join(methods),
                    "trains_reason": why,
                    "help": s.help,
                }
            )
    return pd.DataFrame(rows)
