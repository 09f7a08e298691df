"""Quantize your own model with GPTQ or AWQ (through gptqmodel),
cached so the second run is instant.

    q = llamalab.quantize("default", "gptq", bits=4)     # ~1 min on 2 cores for the embedded model
    m = q.load()                                         # or llamalab.load("default", "gptq")

The work runs in a subprocess, as a Task (llamalab/core/tasks.py; the worker is worker.py); the
result lands in LLAMALAB_CACHE/quantized/ under a key of (model, scheme, settings, calibration text,
library versions). The options and their help: `QuantizeSettings` (settings.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import catalog
from ..core import tasks, validate
from ..core.errors import InvalidSetting, install_extra
from ..core.paths import writable
from ..core.settings import describe, with_changes
from ..runtime.files import store
from ..runtime.files.source import resolve
from . import awq, cache, gptq
from .cache import Settings
from .settings import QuantizeSettings

__all__ = ["GPTQMODEL_INSTALL", "QuantizeSettings", "Quantized", "cached", "quantize"]

GPTQMODEL_INSTALL = install_extra("quant")  # gptqmodel==7.6.0 + optimum (7.7+ needs torch>=2.14.1)
METHODS = {"gptq": gptq, "awq": awq}


@dataclass(frozen=True)
class Quantized:
    """A quantized checkpoint on disk and how it was made. `cached` is True when nothing
    was recomputed."""

    path: str
    model: str
    scheme: str
    settings: dict
    quantize_seconds: float  # gptqmodel's quantize() call, measured when the checkpoint was made
    total_seconds: float  # the whole subprocess (imports, load, quantize, save) when it was made
    cached: bool
    key: str
    versions: dict = field(default_factory=dict)
    log: str = ""
    usage: dict = field(default_factory=dict)  # the worker's CPU seconds, page faults and peak RSS
    hugepages: bool | None = None  # whether the worker ran with torch's huge-page allocator

    def load(self, device: str = "auto", **kw):
        from ..runtime import load

        return load(self.path, self.scheme, device=device, **kw)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in Path(self.path).glob("*.safetensors"))

    def to_dict(self) -> dict:
        return asdict(self)


def quantize(
    model="default",
    scheme: str = "gptq",
    settings: QuantizeSettings | None = None,
    *,
    force: bool = False,
    progress: bool | Callable[[int, int, str], None] = True,
    on_event: Callable[[dict], None] | None = None,
    **options,
) -> Quantized:
    """Quantize `model` with GPTQ or AWQ and cache the result (a second call with the
    same inputs is instant).

    settings: a QuantizeSettings, and/or its fields as keywords (`bits=8, group_size=64`);
      listed below.
    force: redo the work even when a cached result exists.
    progress: a progress bar over decoder layers (True), none (False),
      or callback(done, total, label).
    on_event: called with each of the worker's events (dicts) as they arrive, for widgets.
    """
    if settings is not None and not isinstance(settings, QuantizeSettings):
        raise InvalidSetting(
            f"settings must be a QuantizeSettings, not {type(settings).__name__}.",
            "Pass settings=QuantizeSettings(bits=4, ...) or the fields as keywords.",
        )
    validate.flag("force", force)
    opts = with_changes(settings or QuantizeSettings(), **options)
    t = _target(model, scheme, opts)
    _check_installed()
    if store.is_complete(t.folder) and not force:
        return _result(t.folder, cached=True)
    record = {
        "model": t.fingerprint,
        "source": str(t.source),
        "settings": t.settings.to_dict(),
        "versions": t.versions,
        "key": t.key,
        "default_settings": _is_default(t.settings, t.method, t.shapes),
        "calibration_source": t.text_name,
    }
    folder = writable(t.folder)  # forced over a shared checkpoint: a new one of the learner's own
    _run(t.source, t.settings, t.text, folder, record, opts, progress, on_event)
    return _result(folder, cached=False)


def cached(model="default", scheme: str = "gptq", settings: QuantizeSettings | None = None,
           **options) -> Path | None:  # fmt: skip
    """The folder `quantize()` with these arguments would return at once (cached), else None:
    a readiness check that quantizes nothing (`llamalab workshop check`)."""
    t = _target(model, scheme, with_changes(settings or QuantizeSettings(), **options))
    return t.folder if store.is_complete(t.folder) else None


@dataclass(frozen=True)
class _Target:
    """What a quantize() call resolves to before any work: its inputs and its cache folder."""

    source: Path
    method: Any
    shapes: dict
    settings: Settings
    text_name: str
    text: str
    fingerprint: str
    versions: dict
    key: str
    folder: Path


def _target(model, scheme: str, opts: QuantizeSettings) -> _Target:
    s, method = _scheme(scheme, opts.bits)
    source = _source(model)
    shapes = _shapes(source)
    text_name, text = _calibration(opts.calibration)
    resolved = _settings(s, method, shapes, opts, text_name, text)
    fingerprint, vers = store.model_fingerprint(source), cache.versions()
    k = cache.key(fingerprint, resolved, vers)
    folder = cache.folder(Path(source).name, resolved, k)
    return _Target(source, method, shapes, resolved, text_name, text, fingerprint, vers, k, folder)


quantize.__doc__ += (
    "\n" + "\n".join("    " + line for line in describe(QuantizeSettings).splitlines()) + "\n"
)


def _scheme(name: str, bits: int | None):
    s = catalog.scheme(name)
    if s.made_by not in METHODS:
        raise InvalidSetting(
            f"quantize() makes GPTQ or AWQ checkpoints, not {s.name!r}.",
            "int8 and nf4 quantize while loading: llamalab.load(model, 'int8'|'nf4'); GGUF files: "
            "llamalab.load(model, 'q8_0'|'f16') converts with llama.cpp's converter.",
        )
    method = METHODS[s.made_by]
    bits = int(s.bits) if bits is None else bits
    if bits not in method.BITS:
        raise InvalidSetting(
            f"bits={bits} is not supported for {s.made_by.upper()} in llamalab.",
            f"Use bits in {method.BITS} ({s.made_by.upper()} kernels that load on CPU and CUDA).",
        )
    named = s.name.endswith("bit") and name.strip().lower() == s.name
    if named and bits != int(s.bits):
        raise InvalidSetting(
            f"scheme {s.name!r} is {int(s.bits)}-bit but bits={bits} was asked.",
            f"Pass scheme={s.made_by!r} with bits={bits}, or leave bits out.",
        )
    return catalog.scheme(f"{s.made_by}-{bits}bit"), method


def _source(model) -> Path:
    """The folder of unquantized weights to start from."""
    c = catalog.card(model)
    path = Path(resolve(model, c, catalog.scheme("bf16")))
    if _quant_config(path):
        raise InvalidSetting(
            f"{path} is already quantized ({_quant_config(path).get('quant_method')}).",
            "Quantize from the full-precision checkpoint.",
        )
    return path


def _quant_config(path: Path) -> dict:
    from ..runtime.backends.hf import quantization_config

    return quantization_config(str(path))


def _shapes(path: Path) -> dict:
    """The linear layers' sizes that group_size must divide, from the catalog's reading
    of config.json."""
    c = catalog.card_from_config(path)
    return {
        "hidden_size": c.hidden,
        "intermediate_size": c.intermediate,
        "attention output (heads × head_dim)": c.heads * c.head_dim,
        "kv projection (kv_heads × head_dim)": c.kv_heads * c.head_dim,
    }


def default_group_size(shapes: dict) -> int:
    """128 (the common choice) when it divides every linear's input size, else 64, else 32."""
    ins = [
        shapes["hidden_size"],
        shapes["intermediate_size"],
        shapes["attention output (heads × head_dim)"],
    ]
    for g in (128, 64, 32):
        if all(n % g == 0 for n in ins):
            return g
    raise InvalidSetting(
        f"No group size in (128, 64, 32) divides the input sizes {ins}.",
        "Pass group_size=-1 (one scale per row).",
    )


def _check_group_size(g: int, shapes: dict, method) -> None:
    if g == -1:
        return
    if g <= 0 or g & (g - 1):
        raise InvalidSetting(
            f"group_size={g} must be a power of two (32, 64, 128) or -1.", "Use 32, 64 or 128."
        )
    inputs = {k: v for k, v in shapes.items() if not k.startswith("kv")}
    for name, n in inputs.items():
        if n % g:
            ok = [x for x in (128, 64, 32) if all(v % x == 0 for v in inputs.values())]
            raise InvalidSetting(
                f"group_size={g} does not divide {name} = {n} ({n} / {g} = {n / g:g}): every group "
                "of weights sharing a scale must lie inside one row.",
                f"Use group_size={ok[0]} (divides "
                f"{', '.join(f'{k} {v}' for k, v in inputs.items())})."
                if ok
                else "Use group_size=-1.",
            )
    if method is awq:
        for name, n in shapes.items():
            if n % awq.OUT_MULTIPLE:
                raise InvalidSetting(
                    f"AWQ's clip search needs output sizes divisible by {awq.OUT_MULTIPLE}; "
                    f"{name} = {n} is not.",
                    "Use GPTQ for this model.",
                )


def _calibration(calibration) -> tuple[str, str]:
    from ..data import texts

    if calibration is None:
        t = texts.calibration()
        return t.name, t.text
    if isinstance(calibration, str):
        return "user text", calibration
    if isinstance(calibration, (list, tuple)) and all(isinstance(x, str) for x in calibration):
        return "user texts", "\n\n".join(calibration)
    raise InvalidSetting(
        "calibration must be None, a string or a list of strings.",
        "Pass text, e.g. calibration=open('my.txt').read().",
    )


def _settings(s, method, shapes, opts: QuantizeSettings, text_name: str, text: str) -> Settings:
    g = default_group_size(shapes) if opts.group_size is None else opts.group_size
    _check_group_size(g, shapes, method)
    d = method.DEFAULTS
    return Settings(
        scheme=s.name,
        method=s.made_by,
        bits=int(s.bits),
        group_size=g,
        samples=opts.samples or d["samples"],
        seq_len=opts.seq_len or d["seq_len"],
        calibration=text_name,
        calibration_sha256=hashlib.sha256(text.encode()).hexdigest()[:16],
        batch_size=opts.batch_size or d["batch_size"],
        options={**d["options"], **opts.options(s.made_by)},
    )


def _is_default(settings: Settings, method, shapes) -> bool:
    from ..data import texts

    d = method.DEFAULTS
    return (
        settings.samples,
        settings.seq_len,
        settings.batch_size,
        settings.options,
        settings.group_size,
        settings.calibration,
    ) == (
        d["samples"],
        d["seq_len"],
        d["batch_size"],
        d["options"],
        default_group_size(shapes),
        texts.calibration().name,
    )


def _check_installed() -> None:
    from ..runtime.backends import require

    require("gptqmodel", GPTQMODEL_INSTALL, "quantize() runs GPTQ and AWQ through gptqmodel")


def _env(hugepages: bool) -> dict:
    from ..runtime.backends.gptq import CPU_WORKERS

    env = dict(CPU_WORKERS)
    if hugepages and sys.platform.startswith("linux"):
        env["THP_MEM_ALLOC_ENABLE"] = (
            "1"  # torch: 2 MB-aligned allocations advised to use huge pages
        )
    return env


def _run(
    source: Path,
    settings: Settings,
    text: str,
    out: Path,
    record: dict,
    opts: QuantizeSettings,
    progress,
    on_event,
) -> None:
    """The worker fills a temp folder; the manifest and logs are added,
    then it is renamed to `out`."""
    t0 = time.perf_counter()

    def finish(tmp: Path, task: tasks.Task) -> None:
        shutil.copy(task.log_path, tmp / "quantize.log")
        if (task.workdir / "logs").is_dir():  # gptqmodel's per-run logs (written to its cwd)
            shutil.copytree(task.workdir / "logs", tmp / "gptqmodel-logs")
        done = task.result
        usage = {
            k: done[k]
            for k in ("user_cpu_s", "system_cpu_s", "minor_page_faults", "peak_rss_bytes")
            if k in done
        }
        cache.write_manifest(
            tmp,
            {
                **record,
                "quantize_seconds": done["quantize_seconds"],
                "total_seconds": time.perf_counter() - t0,
                "hugepages": opts.hugepages,
                "worker_usage": usage,
                "load_average": os.getloadavg(),
            },
        )

    label = f"{settings.method.upper()} {settings.bits}-bit g{settings.group_size}"
    if callable(progress):
        on_event, progress = _progress_callback(progress, label, on_event), False
    task = tasks.start_process(
        "llamalab.quantization.worker:quantize_checkpoint",
        output=out,
        replace=True,
        label=label,
        kwargs={
            "source": str(Path(source).resolve()),
            "settings": settings.to_dict(),
            "text": text,
            "device": opts.device,
        },
        env=_env(opts.hugepages),
        progress=bool(progress),
        on_event=on_event,
        finish=finish,
    )
    task.wait()


def _progress_callback(callback, label: str, on_event):
    """The older callback(done, total, label) form of `progress`,
    fed from the job's progress events."""

    def handle(event: dict) -> None:
        if event.get("event") == "progress":
            callback(event["done"], event["total"], label)
        if on_event is not None:
            on_event(event)

    return handle


def _result(path: Path, cached: bool) -> Quantized:
    m = store.read_manifest(path)
    log = path / "quantize.log"
    return Quantized(
        path=str(path),
        model=m["source"],
        scheme=m["settings"]["scheme"],
        settings=m["settings"],
        quantize_seconds=m["quantize_seconds"],
        total_seconds=m["total_seconds"],
        cached=cached,
        key=m["key"],
        versions=m["versions"],
        log=str(log) if log.exists() else "",
        usage=m.get("worker_usage", {}),
        hugepages=m.get("hugepages"),
    )
