"""One sweep: models × schemes × prompts, measured one scheme at a time, as a stream of events.

Each scheme is loaded alone (the previous one unloaded first), warmed up, timed on every prompt,
optionally scored (perplexity, and KL / top-1 agreement against a reference computed once), then
unloaded. Consumers read the events: `compare()` folds them into a DataFrame, the Arena draws them
as they come. A failing scheme becomes a `Failed` event and the sweep goes on; setting `stop_event`
ends the generation in progress and skips what is left.

Rows carry the columns of the metrics vocabulary (llamalab/core/metrics.py; see COLUMNS), so any
other producer of `Row` events feeds the same consumers, `collect()` and `summarize()` included.
What to measure is one `SweepSettings`, shared by `compare()` and the Arena.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .. import catalog
from ..core import validate
from ..core.errors import InvalidSetting, LlamalabError, ModelNotCached
from ..core.metrics import METRICS, columns
from ..core.settings import setting, with_changes
from ..runtime.loaded import LiveStats
from .evaluate import Evaluator

if TYPE_CHECKING:
    import pandas as pd

GENERATION_COLUMNS, LOAD_COLUMNS, QUALITY_COLUMNS = (
    columns("generation"),
    columns("load"),
    columns("quality"),
)
COLUMNS = (
    "model",
    "scheme",
    "run",
    "prompt",
    *GENERATION_COLUMNS,
    *LOAD_COLUMNS,
    *QUALITY_COLUMNS,
    "error",
)
TASK_COLUMNS = tuple(k for k in QUALITY_COLUMNS if k.startswith("task"))
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.gguf")


@dataclass(frozen=True)
class SweepSettings:
    """What a sweep measures per scheme: `sweep()`, `compare()` and the Arena take
    it (or its fields)."""

    max_new_tokens: int = setting(64, "New tokens per generation.")
    fixed_length: bool = setting(
        True, "Generate exactly max_new_tokens (end of sequence ignored), so speeds compare."
    )
    repeats: int = setting(1, "How many times every prompt is timed.")
    warmup: int = setting(
        4, "New tokens of one untimed generation after each load (0: none): first calls are slow."
    )
    quality: bool = setting(
        False, "Also score perplexity on the bundled held-out text (and KL with a reference)."
    )
    reference: str | None = setting(
        None,
        "The scheme KL and top-1 agreement compare against (computed once per model, and measured"
        " first when it is among the schemes; None: no KL).",
    )
    quality_tokens: int = setting(1024, "Tokens of the held-out text scored for quality.")
    quality_window: int = setting(512, "Tokens per scored window.")
    device: str = setting("auto", "Where each scheme runs: 'auto', 'cpu', 'cuda' or 'cuda:N'.")
    quantize_missing: bool = setting(
        True, "Make a GPTQ/AWQ checkpoint first (cached) when none exists yet."
    )

    def __post_init__(self):
        validate.integer("max_new_tokens", self.max_new_tokens, lo=1)
        validate.flag("fixed_length", self.fixed_length)
        validate.integer("repeats", self.repeats, lo=1)
        validate.integer("warmup", self.warmup, lo=0)
        validate.flag("quality", self.quality)
        if self.reference is not None:
            validate.text("reference", self.reference)
        validate.integer("quality_tokens", self.quality_tokens, lo=2)
        validate.integer("quality_window", self.quality_window, lo=2)
        validate.text("device", self.device)
        validate.flag("quantize_missing", self.quantize_missing)


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
    """A piece of generated text as it streams (several tokens may come as one piece); `live` is
    its generation's figures so far (TTFT, prefill and decode tokens/s, peak memory)."""

    model: str
    scheme: str
    prompt_index: int
    text: str
    run: int = 0
    live: LiveStats | None = field(default=None, repr=False, compare=False)


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
    """Quality scoring (perplexity, KL, or the task of `evaluation=`) starts for a scheme."""

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


def sweep(
    models,
    schemes,
    prompts,
    settings: SweepSettings | None = None,
    *,
    stop_event: threading.Event | None = None,
    load: Callable | None = None,
    evaluation=None,
    **overrides,
) -> Iterator[Event]:
    """An iterator of events while measuring every scheme of every model on every prompt.
    `settings` (a SweepSettings) and/or its fields as keywords say what to measure; they are checked
    here, before anything loads. `stop_event` ends the generation in progress and skips the rest.
    `load`: `load(model, scheme, device=)`, default `llamalab.load` (GPTQ/AWQ checkpoints are made
    first when `quantize_missing`): a served model, a test's fake engine. `evaluation`: a task each
    scheme is scored on, (data, scorer) or an Evaluator (llamalab.evaluate's arguments), filling the
    task columns."""
    s = with_changes(settings or SweepSettings(), **overrides)
    task = Evaluator.of(evaluation) if evaluation is not None else None
    run = _Run(
        s, stop_event or threading.Event(), load or _default_loader(s.quantize_missing), task
    )
    return _events(
        _names("models", models), _names("schemes", schemes), _names("prompts", prompts), run
    )


def _events(models, schemes, prompts, run: _Run):
    s = run.settings
    if s.quality and s.reference in schemes[1:]:  # its own pass is the reference: one pass, not two
        schemes = [s.reference, *(x for x in schemes if x != s.reference)]
    for model in models:
        if run.stop.is_set():
            break
        ref = None
        if s.quality and s.reference and s.reference != schemes[0]:
            ref = yield from _reference(model, s.reference, run)
        for i, scheme in enumerate(schemes):
            if run.stop.is_set():
                break
            own_ref = s.quality and s.reference == scheme and i == 0
            made = yield from _scheme(model, scheme, i, len(schemes), prompts, run, ref, own_ref)
            ref = made or ref
        if ref is not None:
            ref.close()
    yield Done(stopped=run.stop.is_set())


@dataclass(frozen=True)
class _Run:
    """One sweep's settings, its stop event and its loader."""

    settings: SweepSettings
    stop: threading.Event
    load: Callable
    evaluation: Evaluator | None = None


def _names(name: str, value) -> list[str]:
    """A non-empty list of non-empty strings (one string is a list of one, except for prompts; cards
    and schemes stand for their names)."""
    if isinstance(value, str) and name != "prompts":
        value = [value]
    if isinstance(value, str) or not isinstance(value, (list, tuple)) or not value:
        raise InvalidSetting(
            f"{name}={value!r} is not a non-empty list of strings.",
            f"Pass {name} as a list, e.g. {name}=[{'…'!r}].",
        )
    out = []
    for i, v in enumerate(value):
        if name != "prompts" and isinstance(
            getattr(v, "name", None), str
        ):  # a ModelCard or a Scheme
            v = v.name
        out.append(validate.text(f"{name}[{i}]", v))
    return out


def _default_loader(quantize_missing: bool) -> Callable:
    def load(model, scheme, device):
        from ..quantization import quantize
        from ..runtime import load as runtime_load

        try:
            return runtime_load(model, scheme, device=device)
        except ModelNotCached:
            s = catalog.scheme(scheme)
            if not (quantize_missing and s.made_by):
                raise
            quantize(model, s.made_by, bits=int(s.bits))
            return runtime_load(model, scheme, device=device)

    return load


def _reference(model: str, scheme: str, run: _Run):
    """Load the reference scheme, keep its log-probs on disk, unload it.
    None (and a Failed event) if it fails."""
    from .quality import Reference

    yield Loading(model, scheme)
    try:
        m = run.load(model, scheme, device=run.settings.device)
    except Exception as e:
        yield _failed(model, f"{scheme} (reference)", e)
        return None
    try:
        yield Scoring(model, scheme)
        return Reference(m, tokens=run.settings.quality_tokens, window=run.settings.quality_window)
    except Exception as e:
        yield _failed(model, f"{scheme} (reference)", e)
        return None
    finally:
        _unload(m)


def _scheme(model, scheme, index, count, prompts, run: _Run, ref, own_ref: bool):
    """Load → warm up → generate per prompt → score → unload one scheme;
    returns the Reference it made."""
    s = run.settings
    yield Loading(model, scheme, index, count)
    try:
        m = run.load(model, scheme, device=s.device)
    except Exception as e:
        yield _failed(model, scheme, e)
        return None
    made = None
    try:
        facts = load_facts(m)
        name = m.scheme_name
        yield Loaded(model, name, facts)
        if s.warmup:
            m.generate(prompts[0], max_new_tokens=s.warmup, stop_event=run.stop)
        base = {"model": model, "scheme": name, **facts}
        for repeat in range(s.repeats):
            for j, prompt in enumerate(prompts):
                if run.stop.is_set():
                    return None
                g, live = None, LiveStats()
                for piece in m.stream(
                    prompt,
                    max_new_tokens=s.max_new_tokens,
                    stop_event=run.stop,
                    min_new_tokens=s.max_new_tokens if s.fixed_length else 0,
                    live=live,
                ):
                    if isinstance(piece, str):
                        yield Token(model, name, j, piece, repeat, live)
                    else:
                        g = piece
                yield Row({**base, "run": repeat, "prompt": prompt, **_generation_columns(g)})
        if s.quality and not run.stop.is_set():
            yield Scoring(model, name)
            made, scores = _score(m, ref, own_ref, s)
            yield Quality(model, name, scores)
        if run.evaluation is not None and not run.stop.is_set():
            yield Scoring(model, name)
            scores = _task(m, run)
            if not run.stop.is_set():
                yield Quality(model, name, scores)
        return made
    except Exception as e:
        yield _failed(model, scheme, e)
        return made
    finally:
        _unload(m)


def _generation_columns(g) -> dict:
    d = g.to_dict()
    return {k: d[k] for k in GENERATION_COLUMNS if k in d}


def load_facts(m) -> dict:
    """The load columns of a LoadedModel: its `to_dict()`, the weight files' size,
    where it was quantized."""
    d = m.to_dict()
    facts = {k: d[k] for k in LOAD_COLUMNS if k in d}
    facts.update(
        quantized_at=m.scheme.quantized_at if m.scheme else None,
        weights_disk_bytes=disk_bytes(m.path) if m.path and not m.engine.remote else None,
    )
    return facts


def _score(m, ref, own_ref: bool, s: SweepSettings):
    """(Reference made from this scheme or None, quality columns). A model that cannot be scored
    (e.g. an engine without logits) gets its reason in `quality_error` and empty quality columns."""
    from .quality import Reference, perplexity, score_against

    t0 = time.perf_counter()
    made, out = None, {}
    try:
        if own_ref:
            made = Reference(m, tokens=s.quality_tokens, window=s.quality_window)
            p = made.perplexity
            out = {"kl_vs_reference": 0.0, "top1_vs_reference": 1.0, "reference": made.scheme}
        elif ref is not None:
            p, d = score_against(m, ref)
            out = {
                "kl_vs_reference": d.kl_mean,
                "top1_vs_reference": d.top1_agreement,
                "reference": d.reference,
            }
        else:
            p = perplexity(m, tokens=s.quality_tokens, window=s.quality_window)
    except LlamalabError as e:
        return None, {**dict.fromkeys(QUALITY_COLUMNS), "quality_error": e.message}
    return made, {
        **out,
        "perplexity": p.value,
        "ppl_text": p.text,
        "ppl_tokens": p.tokens,
        "ppl_window": p.window,
        "ppl_stride": p.stride,
        "quality_s": time.perf_counter() - t0,
    }


def _task(m, run: _Run) -> dict:
    """The task columns of one scheme: `evaluate()` on the sweep's task (its reason in `task_error`
    when the model cannot be evaluated)."""
    t0 = time.perf_counter()
    try:
        e = run.evaluation(m, stop_event=run.stop)  # type: ignore[misc]
    except LlamalabError as err:
        return {**dict.fromkeys(TASK_COLUMNS), "task_error": err.message}
    scores = {k: v for k, v in e.to_dict().items() if k in TASK_COLUMNS}
    return {**scores, "task_s": time.perf_counter() - t0}


def _failed(model: str, scheme: str, e: BaseException) -> Failed:
    if isinstance(e, LlamalabError):
        return Failed(model, scheme, e.message, e.fix)
    return Failed(
        model,
        scheme,
        f"Unexpected {type(e).__name__}: {e}",
        "This is not one of llamalab's known errors.",
    )


def _unload(m) -> None:
    m.unload()
    gc.collect()


def disk_bytes(path: str) -> int:
    """Bytes of the weight files a model was loaded from (a .gguf file,
    or a folder's weight files)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for pattern in WEIGHT_FILES for f in p.glob(pattern))


# ---------------------------------------------------------------- consumers


def add(records: list[dict], event) -> None:
    """Fold one event into `records`: a Row appends its record, Quality fills the quality columns of
    its (model, scheme) rows, Failed appends an error row. Other events change nothing."""
    if isinstance(event, Row):
        records.append(dict(event.record))
    elif isinstance(event, Quality):
        for r in records:
            if (
                r.get("model") == event.model
                and r.get("scheme") == event.scheme
                and not r.get("error")
            ):
                r.update(event.scores)
    elif isinstance(event, Failed):
        records.append(
            {
                "model": event.model,
                "scheme": event.scheme,
                "error": f"{event.message}\n→ {event.fix}" if event.fix else event.message,
            }
        )


def collect(events) -> list[dict]:
    """All rows of an event stream (see `add`)."""
    records: list[dict] = []
    for event in events:
        add(records, event)
    return records


SUMMED = ("model", "scheme", "run", "prompt", "text")  # the group keys, and what has no median
NUMERIC = tuple(k for k in COLUMNS if k not in SUMMED and METRICS[k].numeric)
TEXT = tuple(k for k in COLUMNS if k not in SUMMED and not METRICS[k].numeric)


def summarize(records) -> pd.DataFrame:
    """One row per (model, scheme), in first-seen order: medians over prompts and runs of every
    measured column, `runs` (generations measured) and the first error, if any. Takes records or a
    DataFrame."""
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
