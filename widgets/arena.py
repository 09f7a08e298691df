"""Arena: one prompt (or a few) run across several schemes of one model, one scheme after another in a
worker thread: answers side by side, bars for TTFT, tokens/s and peak memory, and a table.

Quality columns (perplexity, KL vs the first scheme, top-1 agreement) come from a measuring function:
`quality=True` uses `llamalab.measure.quality` (perplexity per token on `quality_tokens` tokens of its
bundled held-out text; KL and top-1 agreement against the first scheme), or pass your own
`fn(loaded, prompts, reference=None) -> dict` with any of the keys perplexity / kl_vs_reference / top1_vs_reference.
"""
from __future__ import annotations

import threading
from typing import Callable

import ipywidgets as w
import plotly.graph_objects as go

import llamalab
from llamalab.plots import QUALITY_METRICS, arena_figure, arena_summary, update_figure

from ._common import ErrorBox, Throttle, Worker, explain, launch, html_table, message_html, pre
from .picker import capability

MAX_PROMPTS = 5
QUALITY_KEYS = {key for key, _, _ in QUALITY_METRICS}
SUMMARY_COLUMNS = {"scheme": None, "load_seconds": "{:.2f}".format, "footprint_mb": "{:.0f}".format,
                   "ttft_ms": "{:.0f}".format, "decode_tokens_per_s": "{:.1f}".format,
                   "peak_memory_mb": "{:.0f}".format, "tokens": None}
HEADERS = {"load_seconds": "load s", "footprint_mb": "weights MB", "ttft_ms": "TTFT ms",
           "decode_tokens_per_s": "decode tok/s", "peak_memory_mb": "peak MB", "perplexity": "perplexity",
           "kl_vs_reference": "KL vs first", "top1_vs_reference": "top-1 agree"}


def resolve_quality(quality, tokens: int | None = None) -> Callable | None:
    """The quality function to call per scheme: a callable, True (the library's measures on `tokens`
    tokens of held-out text) or None."""
    if callable(quality):
        return quality
    return library_quality(tokens) if quality else None


def library_quality(tokens: int | None = None) -> Callable:
    """Per scheme: perplexity on the library's held-out text (`tokens` of it, default the library's);
    against the first scheme (kept as a `Reference` on disk, so its model can be unloaded) also mean KL
    and top-1 agreement."""
    try:
        from llamalab.measure.quality import Reference, divergence, perplexity
    except ImportError:
        raise llamalab.LlamalabError(
            "Quality columns need llamalab.measure.quality, which this version does not have.",
            "Run without quality=True, or pass quality=fn with fn(loaded, prompts, reference=None) -> dict "
            "of perplexity / kl_vs_reference / top1_vs_reference.") from None
    size = {"tokens": tokens} if tokens else {}
    kept: dict = {}

    def quality(loaded, prompts, reference=None) -> dict:
        if reference is None:
            ref = kept["ref"] = Reference(loaded, **size)
            return {"perplexity": ref.perplexity.value, "kl_vs_reference": 0.0, "top1_vs_reference": 1.0}
        ref = kept.get("ref")
        if ref is None:                        # the first scheme failed: no reference to compare with
            return {"perplexity": perplexity(loaded, **size).value}
        d = divergence(loaded, ref)
        p = perplexity(loaded, tokens=len(ref.ids), context=ref.context, stride=ref.stride)
        return {"perplexity": p.value, "kl_vs_reference": d.kl_mean, "top1_vs_reference": d.top1_agreement}
    return quality


class Arena(w.VBox):
    """Schemes of one model side by side. `self.records` holds one tidy row per (scheme, prompt), or one
    row with `error` and `fix` for a scheme that failed. `quality`: see the module docstring; the function
    gets `reference=None` for the first scheme and the first scheme's name for the others."""

    def __init__(self, model: str = "default", schemes=("bf16", "fp16", "int8"), device: str = "cpu",
                 prompt: str = "What is the capital of France? Answer in one sentence.",
                 max_new_tokens: int = 48, quality=False, quality_tokens: int | None = None):
        self.errors = ErrorBox()
        self.quality, self.quality_tokens = quality, quality_tokens
        self.worker = Worker(self.errors, "llamalab-arena")
        self.stop_event = threading.Event()
        self.records: list[dict] = []
        self.cells: dict[str, tuple[w.HTML, w.HTML, w.HTML]] = {}   # scheme → (header, texts, error)
        self.unavailable = capability()
        self.model = w.Dropdown(options=[("SmolLM2 135M Instruct (embedded) · default", "default")]
                                + [(r.display, r.name) for r in llamalab.models().itertuples()],
                                value=model, description="Model", layout=w.Layout(width="420px"))
        self.device = w.ToggleButtons(options=["cpu", "cuda"], value=device, description="Device",
                                      style={"button_width": "70px"})
        self.schemes = w.SelectMultiple(description="Schemes", rows=6, layout=w.Layout(width="420px"))
        self.prompts = w.Textarea(value=prompt, description="Prompts", placeholder="one prompt per line",
                                  layout=w.Layout(width="98%", height="64px"))
        self.max_new_tokens = w.IntSlider(value=max_new_tokens, min=1, max=512, description="Max tokens",
                                          continuous_update=False)
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="300px"))
        self.status = w.HTML()
        self.columns = w.HBox(layout=w.Layout(overflow="auto"))
        self.figure = go.FigureWidget(arena_figure([]))
        self.table = w.HTML()
        self._fill_schemes(schemes)
        self.device.observe(lambda _: self._fill_schemes(self.schemes.value), "value")
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__(children=[
            w.HBox([self.model, self.device]), self.schemes, self.prompts, self.max_new_tokens,
            w.HBox([self.run_button, self.stop_button, self.progress, self.status]), self.errors,
            self.columns, self.figure, self.table])
        self.add_class("llamalab-arena")

    def _fill_schemes(self, keep) -> None:
        """All schemes, those that cannot run on the device marked; `keep` (names or aliases) stays chosen."""
        dev = self.device.value
        self.schemes.options = [(s.name if (s.name, dev) not in self.unavailable else f"{s.name} (not on {dev})",
                                 s.name) for s in llamalab.catalog.all_schemes()]
        self.schemes.value = tuple(dict.fromkeys(llamalab.scheme(s).name for s in keep))

    # ---------------------------------------------------------------- actions

    def run(self, wait: bool = False) -> None:
        """What the Run button does: every chosen scheme in turn, in a worker thread. Problems show inline."""
        launch(self, wait)

    def _start(self) -> None:
        prompts = [p.strip() for p in self.prompts.value.splitlines() if p.strip()]
        if not prompts or not self.schemes.value:
            raise llamalab.InvalidSetting("Nothing to run.", "Choose at least one scheme and write a prompt.")
        if len(prompts) > MAX_PROMPTS:
            raise llamalab.InvalidSetting(f"{len(prompts)} prompts is more than the arena's {MAX_PROMPTS}.",
                                          "Keep a small prompt set; use llamalab.measure for larger sweeps.")
        quality = resolve_quality(self.quality, self.quality_tokens)
        plan = dict(model=self.model.value, schemes=list(self.schemes.value), device=self.device.value,
                    prompts=prompts, max_new_tokens=self.max_new_tokens.value, quality=quality)
        self._prepare(plan)
        self.worker.start(lambda: self._run(**plan), done=self._finish)

    def stop(self) -> None:
        """End the current generation and skip the schemes still waiting."""
        self.stop_event.set()
        self.status.value = "stopping…"

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)

    def _prepare(self, plan: dict) -> None:
        self.records, self.stop_event = [], threading.Event()
        self.cells = {s: (w.HTML(f"<b>{s}</b>"), w.HTML(pre("")), w.HTML()) for s in plan["schemes"]}
        self.columns.children = [w.VBox(list(c), layout=w.Layout(width=f"{max(24, 96 // len(self.cells))}%",
                                                                    margin="0 6px"))
                                 for c in self.cells.values()]
        self.progress.max, self.progress.value = len(plan["schemes"]) * (1 + len(plan["prompts"])), 0
        self.progress.bar_style = "info"
        self.run_button.disabled, self.stop_button.disabled = True, False

    def _run(self, model, schemes, device, prompts, max_new_tokens, quality) -> None:
        for i, scheme in enumerate(schemes):
            if self.stop_event.is_set():
                break
            self.status.value = f"loading {scheme} ({i + 1}/{len(schemes)})…"
            try:            # one scheme failing (library error or not) must not end the others
                loaded = llamalab.load(model, scheme, device)
            except Exception as e:   # noqa: BLE001
                self._fail(scheme, e)
                self.progress.value += 1 + len(prompts)
                continue
            try:
                self._scheme_runs(scheme, loaded, prompts, max_new_tokens, quality, reference=schemes[0])
            except Exception as e:   # noqa: BLE001
                self._fail(scheme, e)
            finally:
                loaded.unload()
            self._redraw()

    def _scheme_runs(self, scheme, loaded, prompts, max_new_tokens, quality, reference) -> None:
        head, body, _ = self.cells[scheme]
        texts: list[str] = []
        self.progress.value += 1
        for j, prompt in enumerate(prompts):
            if self.stop_event.is_set():
                return
            self.status.value = f"{scheme}: prompt {j + 1}/{len(prompts)}"
            texts.append("")
            show = Throttle(lambda _: setattr(body, "value", pre("\n\n".join(texts))), 0.1)

            def on_text(piece, j=j):
                texts[j] += piece
                show(None)
            gen = loaded.generate(prompt, max_new_tokens=max_new_tokens, stop_event=self.stop_event, on_text=on_text)
            show.flush()
            texts[j] = gen.text
            body.value = pre("\n\n".join(texts))
            self.records.append({**gen.to_dict(), "scheme": scheme, "prompt_index": j, "prompt": prompt,
                                 "load_seconds": loaded.load_seconds, "footprint_bytes": loaded.footprint_bytes})
            self.progress.value += 1
        head.value = f"<b>{scheme}</b> · {loaded.footprint_bytes / 1e6:.0f} MB · load {loaded.load_seconds:.1f} s"
        if quality is not None and not self.stop_event.is_set():
            self.status.value = f"{scheme}: measuring quality…"
            scores = quality(loaded, prompts, reference=None if scheme == reference else reference)
            for r in self.records:
                if r["scheme"] == scheme:
                    r.update({k: v for k, v in scores.items() if k in QUALITY_KEYS})

    def _fail(self, scheme: str, e: BaseException) -> None:
        message, fix = explain(e)
        self.cells[scheme][2].value = message_html(message, fix)
        self.records.append({"scheme": scheme, "error": message, "fix": fix})

    def _redraw(self) -> None:
        update_figure(self.figure, arena_figure(self.records))
        self.table.value = html_table(self.summary(), self._table_columns(), HEADERS)

    def summary(self) -> list[dict]:
        """One row per scheme: medians of the runs, load facts, and the error if it failed."""
        loads = {r["scheme"]: r for r in self.records if "load_seconds" in r}
        rows = {r["scheme"]: r for r in arena_summary(self.records)}
        out = []
        for scheme in dict.fromkeys(r["scheme"] for r in self.records):
            row = dict(rows.get(scheme, {"scheme": scheme}))
            if scheme in loads:
                load = loads[scheme]
                row.update(load_seconds=load["load_seconds"], footprint_mb=load["footprint_bytes"] / 1e6,
                           tokens=sum(r["tokens"] for r in self.records if r["scheme"] == scheme and "tokens" in r))
            if "ttft_s" in row:
                row["ttft_ms"] = row["ttft_s"] * 1e3
            if "peak_memory_bytes" in row:
                row["peak_memory_mb"] = row["peak_memory_bytes"] / 1e6
            row["error"] = next((r["error"] for r in self.records if r["scheme"] == scheme and r.get("error")), None)
            out.append(row)
        return out

    def _table_columns(self) -> dict:
        cols = dict(SUMMARY_COLUMNS)
        for key, _, _ in QUALITY_METRICS:
            if any(key in r for r in self.records):
                cols[key] = "{:.4g}".format
        cols["error"] = None
        return cols

    def _finish(self) -> None:
        self._redraw()
        ok = sum(1 for r in self.summary() if not r.get("error"))
        self.status.value = f"{'stopped' if self.stop_event.is_set() else 'done'}: {ok} scheme(s) measured"
        self.progress.bar_style = "success"
        self.run_button.disabled, self.stop_button.disabled = False, True
