"""Quantize your own model with GPTQ or AWQ (through gptqmodel), cached so the second run is instant.

    q = llamalab.quantize("default", "gptq", bits=4)     # ~1 min on 2 cores for the embedded model
    m = q.load()                                         # or llamalab.load("default", "gptq")

The work runs in a subprocess (see worker.py); the result lands in LLAMALAB_CACHE/quantized/ under a
key of (model, scheme, settings, calibration text, library versions).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .. import catalog
from ..errors import InvalidSetting, LlamalabError
from . import awq, cache, gptq
from .cache import Settings

__all__ = ["quantize", "Quantized", "GPTQMODEL_INSTALL"]

GPTQMODEL_INSTALL = ('pip install "gptqmodel==7.6.0" "optimum>=2.3,<3"   '
                     '# 7.7+ needs torch>=2.14.1 and pulls a CUDA torch')
METHODS = {"gptq": gptq, "awq": awq}


@dataclass(frozen=True)
class Quantized:
    """A quantized checkpoint on disk and how it was made. `cached` is True when nothing was recomputed."""
    path: str
    model: str
    scheme: str
    settings: dict
    quantize_seconds: float     # gptqmodel's quantize() call, measured when the checkpoint was made
    total_seconds: float        # the whole subprocess (imports, load, quantize, save) when it was made
    cached: bool
    key: str
    versions: dict = field(default_factory=dict)
    log: str = ""
    usage: dict = field(default_factory=dict)   # the worker's CPU seconds, page faults and peak RSS
    hugepages: bool | None = None               # whether the worker ran with torch's huge-page allocator

    def load(self, device: str = "cpu", **kw):
        from ..runtime import load
        return load(self.path, self.scheme, device=device, **kw)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in Path(self.path).glob("*.safetensors"))

    def to_dict(self) -> dict:
        return asdict(self)


def quantize(model="default", scheme: str = "gptq", bits: int | None = None, group_size: int | None = None,
             calibration: str | list[str] | None = None, *, samples: int | None = None,
             seq_len: int | None = None, batch_size: int | None = None, device: str = "cpu",
             force: bool = False, progress: bool | Callable[[int, int, str], None] = True,
             hugepages: bool = True, **options) -> Quantized:
    """Quantize `model` with GPTQ or AWQ and cache the result (a second call with the same inputs is instant).

    calibration: None = the bundled public-domain text (KJV Genesis 1–25), a string, or a list of strings.
    samples × seq_len calibration tokens (defaults per method in gptq.DEFAULTS / awq.DEFAULTS).
    hugepages: run the subprocess with torch's transparent-huge-page allocator (same result, AWQ much faster).
    options: extra gptqmodel config fields (gptq.OPTIONS / awq.OPTIONS), part of the cache key.
    """
    s, method = _scheme(scheme, bits)
    source = _source(model)
    shapes = _shapes(source)
    text_name, text = _calibration(calibration)
    settings = _settings(s, method, shapes, group_size, samples, seq_len, batch_size, options, text_name, text)
    _check_installed()
    fingerprint = cache.model_fingerprint(source)
    vers = cache.versions()
    k = cache.key(fingerprint, settings, vers)
    out = cache.folder(Path(source).name, settings, k)
    if cache.is_complete(out) and not force:
        return _result(out, cached=True)
    record = {"model": fingerprint, "source": str(source), "settings": settings.to_dict(), "versions": vers,
              "key": k, "default_settings": _is_default(settings, method, shapes),
              "calibration_source": text_name}
    _run(source, settings, text, out, record, device, progress, hugepages)
    return _result(out, cached=False)


def _scheme(name: str, bits: int | None):
    s = catalog.scheme(name)
    if s.family not in METHODS:
        raise InvalidSetting(
            f"quantize() makes GPTQ or AWQ checkpoints, not {s.name!r}.",
            "int8 and nf4 quantize while loading: llamalab.load(model, 'int8'|'nf4'); GGUF files: "
            "llamalab.load(model, 'q8_0'|'f16') converts with llama.cpp's converter.")
    method = METHODS[s.family]
    bits = int(s.bits) if bits is None else bits
    if bits not in method.BITS:
        raise InvalidSetting(f"bits={bits} is not supported for {s.family.upper()} in llamalab.",
                             f"Use bits in {method.BITS} ({s.family.upper()} kernels that load on CPU and CUDA).")
    named = s.name.endswith("bit") and name.strip().lower() == s.name
    if named and bits != int(s.bits):
        raise InvalidSetting(f"scheme {s.name!r} is {int(s.bits)}-bit but bits={bits} was asked.",
                             f"Pass scheme={s.family!r} with bits={bits}, or leave bits out.")
    return catalog.scheme(f"{s.family}-{bits}bit"), method


def _source(model) -> Path:
    """The folder of unquantized weights to start from."""
    from ..runtime.source import resolve
    c = catalog.card(model)
    path = Path(resolve(model, c, catalog.scheme("bf16")))
    if _quant_config(path):
        raise InvalidSetting(f"{path} is already quantized ({_quant_config(path).get('quant_method')}).",
                             "Quantize from the full-precision checkpoint.")
    return path


def _quant_config(path: Path) -> dict:
    return json.loads((path / "config.json").read_text()).get("quantization_config") or {}


def _shapes(path: Path) -> dict:
    cfg = json.loads((path / "config.json").read_text())
    cfg = {**cfg.get("text_config", {}), **cfg}
    hidden, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or hidden // heads
    kv = cfg.get("num_key_value_heads") or heads
    return {"hidden_size": hidden, "intermediate_size": cfg.get("intermediate_size", 4 * hidden),
            "attention output (heads × head_dim)": heads * head_dim, "kv projection (kv_heads × head_dim)": kv * head_dim}


def default_group_size(shapes: dict) -> int:
    """128 (the common choice) when it divides every linear's input size, else 64, else 32."""
    ins = [shapes["hidden_size"], shapes["intermediate_size"], shapes["attention output (heads × head_dim)"]]
    for g in (128, 64, 32):
        if all(n % g == 0 for n in ins):
            return g
    raise InvalidSetting(f"No group size in (128, 64, 32) divides the input sizes {ins}.",
                         "Pass group_size=-1 (one scale per row).")


def _check_group_size(g: int, shapes: dict, method) -> None:
    if g == -1:
        return
    if g <= 0 or g & (g - 1):
        raise InvalidSetting(f"group_size={g} must be a power of two (32, 64, 128) or -1.", "Use 32, 64 or 128.")
    inputs = {k: v for k, v in shapes.items() if not k.startswith("kv")}
    for name, n in inputs.items():
        if n % g:
            ok = [x for x in (128, 64, 32) if all(v % x == 0 for v in inputs.values())]
            raise InvalidSetting(
                f"group_size={g} does not divide {name} = {n} ({n} / {g} = {n / g:g}): every group of "
                f"weights sharing a scale must lie inside one row.",
                f"Use group_size={ok[0]} (divides {', '.join(f'{k} {v}' for k, v in inputs.items())})." if ok
                else "Use group_size=-1.")
    if method is awq:
        for name, n in shapes.items():
            if n % awq.OUT_MULTIPLE:
                raise InvalidSetting(f"AWQ's clip search needs output sizes divisible by {awq.OUT_MULTIPLE}; "
                                     f"{name} = {n} is not.", "Use GPTQ for this model.")


def _calibration(calibration) -> tuple[str, str]:
    from ..data import texts
    if calibration is None:
        t = texts.calibration()
        return t.name, t.text
    if isinstance(calibration, str):
        return "user text", calibration
    if isinstance(calibration, (list, tuple)) and all(isinstance(x, str) for x in calibration):
        return "user texts", "\n\n".join(calibration)
    raise InvalidSetting("calibration must be None, a string or a list of strings.",
                         "Pass text, e.g. calibration=open('my.txt').read().")


def _settings(s, method, shapes, group_size, samples, seq_len, batch_size, options, text_name, text) -> Settings:
    bad = sorted(set(options) - set(method.OPTIONS))
    if bad:
        raise InvalidSetting(f"Unknown option(s) {bad} for {s.family}.", f"Allowed: {', '.join(method.OPTIONS)}.")
    g = default_group_size(shapes) if group_size is None else int(group_size)
    _check_group_size(g, shapes, method)
    d = method.DEFAULTS
    n, L, b = samples or d["samples"], seq_len or d["seq_len"], batch_size or d["batch_size"]
    if n < 1 or L < 16 or b < 1:
        raise InvalidSetting(f"samples={n}, seq_len={L}, batch_size={b} are too small.",
                             "Use samples ≥ 1, seq_len ≥ 16, batch_size ≥ 1.")
    return Settings(scheme=s.name, method=s.family, bits=int(s.bits), group_size=g, samples=n, seq_len=L,
                    calibration=text_name, calibration_sha256=hashlib.sha256(text.encode()).hexdigest()[:16],
                    batch_size=b, options={**d["options"], **options})


def _is_default(settings: Settings, method, shapes) -> bool:
    from ..data import texts
    d = method.DEFAULTS
    return (settings.samples, settings.seq_len, settings.batch_size, settings.options,
            settings.group_size, settings.calibration) == (
        d["samples"], d["seq_len"], d["batch_size"], d["options"], default_group_size(shapes), texts.calibration().name)


def _check_installed() -> None:
    from ..runtime.backends import require
    require("gptqmodel", GPTQMODEL_INSTALL, "quantize() runs GPTQ and AWQ through gptqmodel")


def _env(hugepages: bool) -> dict:
    env = dict(os.environ)
    env.setdefault("GPTQMODEL_CPU_WORKERS", "2")
    if hugepages and sys.platform.startswith("linux"):
        env["THP_MEM_ALLOC_ENABLE"] = "1"   # torch: 2 MB-aligned allocations advised to use huge pages
    return env


def _run(source: Path, settings: Settings, text: str, out: Path, record: dict, device: str, progress,
         hugepages: bool) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent)).resolve()
    log_path = tmp / "quantize.log"
    spec = {"source": str(Path(source).resolve()), "settings": settings.to_dict(), "text": text, "device": device,
            "tmp_out": str(tmp / "model")}
    (tmp / "spec.json").write_text(json.dumps(spec))
    t0 = time.perf_counter()
    try:
        done = _spawn(tmp / "spec.json", log_path, progress, hugepages, settings)
        model_dir = tmp / "model"
        shutil.copy(log_path, model_dir / "quantize.log")
        if (tmp / "logs").is_dir():                 # gptqmodel's per-run logs (written to its cwd)
            shutil.copytree(tmp / "logs", model_dir / "gptqmodel-logs")
        usage = {k: done[k] for k in ("user_cpu_s", "system_cpu_s", "minor_page_faults", "peak_rss_bytes") if k in done}
        cache.write_manifest(model_dir, {**record, "quantize_seconds": done["quantize_seconds"],
                                         "total_seconds": time.perf_counter() - t0, "hugepages": hugepages,
                                         "worker_usage": usage, "load_average": os.getloadavg()})
        if out.exists():
            shutil.rmtree(out)
        model_dir.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _spawn(spec: Path, log_path: Path, progress, hugepages: bool, settings: Settings) -> dict:
    bar = _Progress(progress, f"{settings.method.upper()} {settings.bits}-bit g{settings.group_size}")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llamalab.quantize.worker", str(spec)],
                                stdout=subprocess.PIPE, stderr=log, text=True, env=_env(hugepages),
                                cwd=spec.parent)   # gptqmodel writes ./logs: keep it out of the user's folder
        done: dict = {}
        error = ""
        try:
            for line in proc.stdout:
                ev = _event(line, log)
                if ev.get("event") == "layer":
                    bar.update(ev["i"] + 1, ev["n"])
                elif ev.get("event") == "done":
                    done = ev
                elif ev.get("event") == "error":
                    error = ev["message"]
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            bar.close()
    if error:
        raise InvalidSetting(error, "Pass more calibration text, or lower samples / seq_len.")
    if rc != 0 or not done:
        raise LlamalabError(f"Quantizing failed (exit code {rc}). Last lines of the log:\n{_tail(log_path)}",
                            f"Full log: {log_path} (kept only while this error is shown; rerun to reproduce).")
    return done


def _event(line: str, log) -> dict:
    """A JSON event from the worker; gptqmodel's own progress text (which shares stdout and redraws
    with carriage returns) goes to the log."""
    at = line.find('{"event"')
    if at < 0:
        log.write(line)
        return {}
    log.write(line[:at] + "\n")
    try:
        ev = json.loads(line[at:])
        return ev if isinstance(ev, dict) else {}
    except ValueError:
        log.write(line[at:])
        return {}


def _tail(path: Path, n: int = 15) -> str:
    lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    return "\n".join(lines[-n:])


class _Progress:
    """tqdm bar over decoder layers, or a user callback(done, total, label) for widgets."""

    def __init__(self, progress, label: str):
        self.callback = progress if callable(progress) else None
        self.label, self.bar = label, None
        self.enabled = bool(progress)

    def update(self, done: int, total: int) -> None:
        if self.callback:
            self.callback(done, total, self.label)
        elif self.enabled:
            if self.bar is None:
                from tqdm import tqdm
                self.bar = tqdm(total=total, desc=self.label, unit="layer", file=sys.stderr)
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _result(path: Path, cached: bool) -> Quantized:
    m = cache.read_manifest(path)
    log = path / "quantize.log"
    return Quantized(path=str(path), model=m["source"], scheme=m["settings"]["scheme"], settings=m["settings"],
                     quantize_seconds=m["quantize_seconds"], total_seconds=m["total_seconds"], cached=cached,
                     key=m["key"], versions=m["versions"], log=str(log) if log.exists() else "",
                     usage=m.get("worker_usage", {}), hugepages=m.get("hugepages"))
