"""One sweep: models × schemes × prompts, measured one scheme at a time, as a stream of events.

Each scheme is loaded alone (the previous one unloaded first), warmed up, timed on every prompt,
optionally scored (perplexity, and KL / top-1 agreement against a reference computed once), then
unloaded. Consumers read the events: `compare()` folds them into a DataFrame, the Arena draws them
as they come. A failing scheme becomes a `Failed` event and the sweep goes on; setting `stop_event`
ends the generation in progress and skips what is left.

Rows carry the columns of `llamalab.metrics` (see COLUMNS), so any other producer of `Row` events
— a load test sending requests to an endpoint, say — feeds the same consumers, `collect()` and
`summary()` included.
"""
from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from .. import validate
from ..errors import InvalidSetting, LlamalabError

GENERATION_COLUMNS = ("text", "prompt_tokens", "new_tokens", "ttft_s", "prefill_s", "decode_tokens_per_s",
                      "total_s", "peak_memory_bytes", "peak_memory_kind", "finish_reason")
LOAD_COLUMNS = ("backend", "engine", "device", "load_s", "weights_memory_bytes", "weights_disk_bytes",
                "load_memory_delta_bytes", "load_memory_kind", "load_peak_bytes", "estimated_weights_bytes",
                "estimate_error_pct", "quantized_at", "path")
QUALITY_COLUMNS = ("perplexity", "ppl_text", "ppl_tokens", "ppl_context", "ppl_stride", "kl_vs_reference",
                   "top1_vs_reference", "reference", "quality_s", "quality_error")
COLUMNS = ("model", "scheme", "run", "prompt", *GENERATION_COLUMNS, *LOAD_COLUMNS, *QUALITY_COLUMNS, "error")
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.gguf")


# ---------------------------------------------------------------- events

@dataclass(frozen=True)
class Loading:
    """A scheme starts loading; `index` of `count` schemes in this sweep (for progress bars)."""
    model: str
    scheme: str
    index: int = 0
    count: int = 1


@dataclass(frozen=True)
class Loaded:
    """A scheme is in memory; `facts` are its load columns (load_s, weights_memory_bytes, …)."""
    model: str
    scheme: str
    facts: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Token:
    """A piece of generated text as it streams (several tokens may come as one piece)."""
    model: str
    scheme: str
    prompt_index: int
    text: str
    run: int = 0


@dataclass(frozen=True)
class Row:
    """One finished generation (or request): a dict with the columns of COLUMNS."""
    record: dict

    @property
    def model(self) -> str:
        return self.record.get("model", "")

    @property
    def scheme(self) -> str:
        return self.record.get("scheme", "")


@dataclass(frozen=True)
class Scoring:
    """Quality scoring (perplexity, KL) starts for a scheme."""
    model: str
    scheme: str


@dataclass(frozen=True)
class Quality:
    """Quality columns for every row of (model, scheme); `quality_error` says why they are empty."""
    model: str
    scheme: str
    scores: dict


@dataclass(frozen=True)
class Failed:
    """A scheme (or the quality reference) could not be measured; the sweep goes on."""
    model: str
    scheme: str
    message: str
    fix: str = ""


@dataclass(frozen=True)
class Done:
    """The sweep ended: all done, or `stopped` by the stop event."""
    stopped: bool = False


Event = Loading | Loaded | Token | Row | Scoring | Quality | Failed | Done


# ---------------------------------------------------------------- the sweep

def sweep(models, schemes, prompts, *, max_new_tokens: int = 64, fixed_length: bool = True, repeats: int = 1,
          warmup: int = 4, quality: bool = False, reference: str | None = None, tokens: int = 1024,
          context: int = 512, device: str = "cpu", quantize_missing: bool = True,
          stop_event: threading.Event | None = None, load: Callable | None = None) -> Iterator[Event]:
    """An iterator of events while measuring every scheme of every model on every prompt (`repeats` times).
    Arguments are checked here, before anything loads.

    max_new_tokens: new tokens per generation (exactly that many when `fixed_length`, so speeds compare).
    warmup: new tokens of one untimed generation after each load (0: none).
    quality: score perplexity on `tokens` tokens of the held-out text, windows of `context`; with
    `reference` (a scheme name) also KL and top-1 agreement against it (computed once per model; if it
    is the first scheme, from that scheme's own pass). load: `load(model, scheme, device=)`, default
    `llamalab.runtime.load` (GPTQ/AWQ checkpoints are made first when `quantize_missing`).
    """
    models = _names("models", models)
    schemes = _names("schemes", schemes)
    prompts = _names("prompts", prompts)
    plan = _Plan(max_new_tokens=validate.integer("max_new_tokens", max_new_tokens, lo=1),
                 fixed_length=validate.flag("fixed_length", fixed_length),
                 repeats=validate.integer("repeats", repeats, lo=1), warmup=validate.integer("warmup", warmup, lo=0),
                 quality=validate.flag("quality", quality), tokens=validate.integer("tokens", tokens, lo=2),
                 context=validate.integer("context", context, lo=2), device=validate.text("device", device),
                 stop=stop_event or threading.Event(),
                 load=load or _default_loader(validate.flag("quantize_missing", quantize_missing)))
    if reference is not None:
        validate.text("reference", reference)
    return _events(models, schemes, prompts, reference, plan)


def _events(models, schemes, prompts, reference, plan):
    for model in models:
        if plan.stop.is_set():
            break
        ref = None
        if plan.quality and reference and reference != schemes[0]:
            ref = yield from _reference(model, reference, plan)
        for i, scheme in enumerate(schemes):
            if plan.stop.is_set():
                break
            own_ref = plan.quality and reference is not None and reference == scheme and i == 0
            made = yield from _scheme(model, scheme, i, len(schemes), prompts, plan, ref, own_ref)
            ref = made or ref
        if ref is not None:
            ref.close()
    yield Done(stopped=plan.stop.is_set())


@dataclass(frozen=True)
class _Plan:
    max_new_tokens: int
    fixed_length: bool
    repeats: int
    warmup: int
    quality: bool
    tokens: int
    context: int
    device: str
    stop: threading.Event
    load: Callable


def _names(name: str, value) -> list[str]:
    """A non-empty list of non-empty strings (one string is a list of one, except for prompts; cards and
    schemes stand for their names)."""
    if isinstance(value, str) and name != "prompts":
        value = [value]
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise InvalidSetting(f"{name}={value!r} is not a non-empty list of strings.",
                              f"Pass {name} as a list, e.g. {name}=[{'…'!r}].")
    out = []
    for i, v in enumerate(value):
        if name != "prompts" and isinstance(getattr(v, "name", None), str):    # a ModelCard or a Scheme
            v = v.name
        out.append(validate.text(f"{name}[{i}]", v))
    return out


def _default_loader(quantize_missing: bool) -> Callable:
    def load(model, scheme, device):
        from .. import catalog
        from ..errors import ModelNotCached
        from ..runtime import load as runtime_load
        try:
            return runtime_load(model, scheme, device=device)
        except ModelNotCached:
            s = catalog.scheme(scheme)
            if not (quantize_missing and s.family in ("gptq", "awq")):
                raise
            from ..quantize import quantize
            quantize(model, s.family, bits=int(s.bits))
            return runtime_load(model, scheme, device=device)
    return load


def _reference(model: str, scheme: str, plan: _Plan):
    """Load the reference scheme, keep its log-probs on disk, unload it. None (and a Failed event) if it fails."""
    from .quality import Reference
    yield Loading(model, scheme)
    try:
        m = plan.load(model, scheme, device=plan.device)
    except Exception as e:       # noqa: BLE001  (one failure must not end the sweep)
        yield _failed(model, f"{scheme} (reference)", e)
        return None
    try:
        yield Scoring(model, scheme)
        return Reference(m, tokens=plan.tokens, context=plan.context)
    except Exception as e:       # noqa: BLE001
        yield _failed(model, f"{scheme} (reference)", e)
        return None
    finally:
        _unload(m)


def _scheme(model, scheme, index, count, prompts, plan: _Plan, ref, own_ref: bool):
    """Load → warm up → generate per prompt → score → unload one scheme; returns the Reference it made."""
    yield Loading(model, scheme, index, count)
    try:
        m = plan.load(model, scheme, device=plan.device)
    except Exception as e:       # noqa: BLE001
        yield _failed(model, scheme, e)
        return None
    made = None
    try:
        facts = load_facts(m)
        name = m.scheme.name
        yield Loaded(model, name, facts)
        if plan.warmup:
            m.generate(prompts[0], max_new_tokens=plan.warmup, stop_event=plan.stop)   # first calls are slow
        base = {"model": model, "scheme": name, **facts}
        for run in range(plan.repeats):
            for j, prompt in enumerate(prompts):
                if plan.stop.is_set():
                    return None
                g = None
                for piece in m.stream(prompt, max_new_tokens=plan.max_new_tokens, stop_event=plan.stop,
                                      min_new_tokens=plan.max_new_tokens if plan.fixed_length else 0):
                    if isinstance(piece, str):
                        yield Token(model, name, j, piece, run)
                    else:
                        g = piece
                yield Row({**base, "run": run, "prompt": prompt, **_generation_columns(g)})
        if plan.quality and not plan.stop.is_set():
            yield Scoring(model, name)
            made, scores = _score(m, ref, own_ref, plan)
            yield Quality(model, name, scores)
        return made
    except Exception as e:       # noqa: BLE001
        yield _failed(model, scheme, e)
        return made
    finally:
        _unload(m)


def _generation_columns(g) -> dict:
    d = g.to_dict()
    return {k: d[k] for k in GENERATION_COLUMNS if k in d}


def load_facts(m) -> dict:
    """The load columns of a LoadedModel: its `to_dict()`, the weight files' size, where it was quantized."""
    d = m.to_dict()
    quantized_at = "file" if m.scheme.family in ("gptq", "awq", "gguf") else (
        "load" if m.scheme.quantized else "none (dtype cast at load)")
    facts = {k: d[k] for k in LOAD_COLUMNS if k in d}
    facts.update(engine=getattr(m.engine, "name", ""), device=m.device, quantized_at=quantized_at,
                 weights_disk_bytes=disk_bytes(m.path) if m.path else None)
    return facts


def _score(m, ref, own_ref: bool, plan: _Plan):
    """(Reference made from this scheme or None, quality columns). A model that cannot be scored (e.g. an
    engine without logits) gets its reason in `quality_error` and empty quality columns."""
    from .quality import Reference, divergence, perplexity
    t0 = time.perf_counter()
    made, out = None, {}
    try:
        if own_ref:
            made = Reference(m, tokens=plan.tokens, context=plan.context)
            p = made.perplexity
            out = {"kl_vs_reference": 0.0, "top1_vs_reference": 1.0, "reference": made.scheme}
        elif ref is not None:
            d = divergence(m, ref)
            p = perplexity(m, tokens=len(ref.ids), context=ref.context, stride=ref.stride)
            out = {"kl_vs_reference": d.kl_mean, "top1_vs_reference": d.top1_agreement, "reference": d.reference}
        else:
            p = perplexity(m, tokens=plan.tokens, context=plan.context)
    except LlamalabError as e:
        return None, {**dict.fromkeys(QUALITY_COLUMNS), "quality_error": e.message}
    return made, {**out, "perplexity": p.value, "ppl_text": p.text, "ppl_tokens": p.tokens,
                  "ppl_context": p.context, "ppl_stride": p.stride, "quality_s": time.perf_counter() - t0}


def _failed(model: str, scheme: str, e: BaseException) -> Failed:
    if isinstance(e, LlamalabError):
        return Failed(model, scheme, e.message, e.fix)
    return Failed(model, scheme, f"Unexpected {type(e).__name__}: {e}", "This is not one of llamalab's known errors.")


def _unload(m) -> None:
    m.unload()
    gc.collect()


def disk_bytes(path: str) -> int:
    """Bytes of the weight files a model was loaded from (a .gguf file, or a folder's weight files)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for pattern in WEIGHT_FILES for f in p.glob(pattern))


# ---------------------------------------------------------------- consumers

def add(records: list[dict], event) -> None:
    """Fold one event into `records`: a Row appends its record, Quality fills the quality columns of its
    (model, scheme) rows, Failed appends an error row. Other events change nothing."""
    if isinstance(event, Row):
        records.append(dict(event.record))
    elif isinstance(event, Quality):
        for r in records:
            if r.get("model") == event.model and r.get("scheme") == event.scheme and not r.get("error"):
                r.update(event.scores)
    elif isinstance(event, Failed):
        records.append({"model": event.model, "scheme": event.scheme,
                        "error": f"{event.message}\n→ {event.fix}" if event.fix else event.message})


def collect(events) -> list[dict]:
    """All rows of an event stream (see `add`)."""
    records: list[dict] = []
    for event in events:
        add(records, event)
    return records


NUMERIC = ("prompt_tokens", "new_tokens", "ttft_s", "prefill_s", "decode_tokens_per_s", "total_s",
           "peak_memory_bytes", "load_s", "weights_memory_bytes", "weights_disk_bytes", "load_memory_delta_bytes",
           "load_peak_bytes", "estimated_weights_bytes", "estimate_error_pct", "perplexity", "ppl_tokens",
           "ppl_context", "ppl_stride", "kl_vs_reference", "top1_vs_reference", "quality_s")
TEXT = ("backend", "engine", "device", "peak_memory_kind", "load_memory_kind", "quantized_at", "ppl_text",
        "reference", "quality_error", "error")


def summary(records):
    """One row per (model, scheme), in first-seen order: medians over prompts and runs of every measured
    column, `runs` (generations measured) and the first error, if any. Takes records or a DataFrame."""
    import pandas as pd
    df = records if isinstance(records, pd.DataFrame) else pd.DataFrame(list(records))
    for key in ("model", "scheme", "new_tokens", "error"):
        if key not in df:
            df[key] = None
    df = df.copy()
    df["model"] = df["model"].fillna("")
    num = [c for c in NUMERIC if c in df]
    df[num] = df[num].apply(pd.to_numeric, errors="coerce")
    g = df.groupby(["model", "scheme"], sort=False)
    out = g[num].median()
    out.insert(0, "runs", g["new_tokens"].count())
    for c in TEXT:
        if c in df:
            out[c] = g[c].first()
    return out.reset_index()
