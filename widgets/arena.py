"""Arena: one prompt (or a few) run across several schemes of one model, side by side.

The work is `llamalab.sweep` (one scheme loaded at a time, warmed up, timed, optionally scored,
unloaded) running in a background Task; the Arena only draws its events: a status line, the text
streaming into each scheme's column under a live speed line (TTFT, prefill and decode tokens/s, peak
memory: `speed_line` of the generation's LiveStats), bars and a table from the finished rows,
failures inline. Stop
is the task's stop, which the sweep sees as its stop event. With `quality=True` each scheme also
gets perplexity per token on `quality_tokens` tokens of the bundled held-out text, and KL / top-1
agreement against the first scheme.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as w
import plotly.graph_objects as go

import llamalab
from llamalab import LiveStats, SweepSettings, metric, summarize, sweep
from llamalab.core.settings import with_changes
from llamalab.measure.sweep import Done, Failed, Loaded, Loading, Quality, Row, Scoring, Token, add
from llamalab.plots import QUALITY_METRICS, arena_figure, update_figure
from llamalab.runtime import resolve_device

from ._common import (
    SPEED_INTERVAL,
    Background,
    ErrorBox,
    Throttle,
    background,
    html_table,
    launch,
    message_html,
    pre,
    speed_line,
)
from .picker import capability

MAX_PROMPTS = 5
TABLE = {
    "load_s": ".2f",
    "weights_memory_bytes": ".0f",
    "ttft_s": ".0f",
    "prefill_tokens_per_s": ".0f",
    "decode_tokens_per_s": ".1f",
    "peak_memory_bytes": ".0f",
    "new_tokens": ".0f",
}  # summary column → number format (after scale)


class Arena(Background, w.VBox):
    """Schemes of one model side by side. `self.records` holds the sweep's rows: one per (scheme,
    prompt), or one with `error` for a scheme that failed. `settings` (a SweepSettings; its fields
    as keywords too) says what to measure; `load` replaces `llamalab.load` (a served model,
    a test's fake engine)."""

    def __init__(
        self,
        model: str = "default",
        schemes=("bf16", "fp16", "int8"),
        prompt: str = "What is the capital of France? Answer in one sentence.",
        settings: SweepSettings | None = None,
        load: Callable | None = None,
        **overrides,
    ):
        self.errors = ErrorBox()
        self.settings = _settings(settings, overrides)
        self.load = load
        self.records: list[dict] = []
        # scheme → (header, texts, error, speed line)
        self.cells: dict[str, tuple[w.HTML, w.HTML, w.HTML, w.HTML]] = {}
        self.texts: dict[str, list[str]] = {}
        self.unavailable = capability()
        self.model = w.Dropdown(
            options=[("SmolLM2 135M Instruct (embedded) · default", "default")]
            + [(r.display, r.name) for r in llamalab.models().itertuples()],
            value=model,
            description="Model",
            layout=w.Layout(width="420px"),
        )
        self.device = w.ToggleButtons(
            options=["cpu", "cuda"],
            value=_device(self.settings.device),
            description="Device",
            style={"button_width": "70px"},
        )
        self.schemes = w.SelectMultiple(
            description="Schemes", rows=6, layout=w.Layout(width="420px")
        )
        self.prompts = w.Textarea(
            value=prompt,
            description="Prompts",
            placeholder="one prompt per line",
            layout=w.Layout(width="98%", height="64px"),
        )
        self.max_new_tokens = w.IntSlider(
            value=self.settings.max_new_tokens,
            min=1,
            max=512,
            description="Max tokens",
            continuous_update=False,
        )
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(
            description="Stop", button_style="danger", icon="stop", disabled=True
        )
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="300px"))
        self.status = w.HTML()
        self.columns = w.HBox(layout=w.Layout(overflow="auto"))
        self.figure = go.FigureWidget(arena_figure([]))
        self.table = w.HTML()
        self._fill_schemes(schemes)
        self.device.observe(lambda _: self._fill_schemes(self.schemes.value), "value")
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__(
            children=[
                w.HBox([self.model, self.device]),
                self.schemes,
                self.prompts,
                self.max_new_tokens,
                w.HBox([self.run_button, self.stop_button, self.progress, self.status]),
                self.errors,
                self.columns,
                self.figure,
                self.table,
            ]
        )
        self.add_class("llamalab-arena")

    def _fill_schemes(self, keep) -> None:
        """All schemes, those that cannot run on the device marked; `keep` (names or aliases)
        stays chosen."""
        dev = self.device.value
        self.schemes.options = [
            (s if (s, dev) not in self.unavailable else f"{s} (not on {dev})", s)
            for s in llamalab.catalog.scheme_names()
        ]
        self.schemes.value = tuple(dict.fromkeys(llamalab.scheme(s).name for s in keep))

    # ---------------------------------------------------------------- actions

    def run(self, wait: bool = False) -> None:
        """What the Run button does: the sweep over the chosen schemes, in a worker thread."""
        launch(self, wait)

    def _start(self) -> None:
        prompts = [p.strip() for p in self.prompts.value.splitlines() if p.strip()]
        if not prompts or not self.schemes.value:
            raise llamalab.InvalidSetting(
                "Nothing to run.", "Choose at least one scheme and write a prompt."
            )
        if len(prompts) > MAX_PROMPTS:
            raise llamalab.InvalidSetting(
                f"{len(prompts)} prompts is more than the arena's {MAX_PROMPTS}.",
                "Keep a small prompt set; use llamalab.compare for larger sweeps.",
            )
        schemes = list(self.schemes.value)
        s = with_changes(
            self.settings,
            max_new_tokens=self.max_new_tokens.value,
            device=self.device.value,
            reference=schemes[0] if self.settings.quality else None,
        )
        model = self.model.value
        self._prepare(schemes, len(prompts))
        self.task = background(
            self,
            lambda task: self._follow(
                sweep(model, schemes, prompts, s, load=self.load, stop_event=task.stop_event)
            ),
            self._finish,
            "arena",
        )

    def stop(self) -> None:
        """End the current generation and skip the schemes still waiting."""
        super().stop()
        self.status.value = "stopping…"

    def _prepare(self, schemes: list[str], n_prompts: int) -> None:
        self.records, self.texts, self._prompts, self._index = [], {}, n_prompts, 0
        self._lives: dict[str, LiveStats] = {}  # scheme → its generation's figures as it streams
        self.cells = {
            s: (w.HTML(f"<b>{s}</b>"), w.HTML(pre("")), w.HTML(), w.HTML()) for s in schemes
        }
        self.columns.children = [
            w.VBox(
                [head, texts, speed, error],
                layout=w.Layout(width=f"{max(24, 96 // len(self.cells))}%", margin="0 6px"),
            )
            for head, texts, error, speed in self.cells.values()
        ]
        self.progress.max, self.progress.value = len(schemes) * (1 + n_prompts), 0
        self.progress.bar_style = "info"
        self.run_button.disabled, self.stop_button.disabled = True, False
        self._redraw_soon = Throttle(lambda _: self._redraw(), 0.25)

    # ---------------------------------------------------------------- events of the sweep

    def _follow(self, events) -> None:
        """Draw each event of the sweep as it comes (on the task's thread)."""
        handlers = {
            Loading: self._on_loading,
            Loaded: self._on_loaded,
            Token: self._on_token,
            Row: self._on_row,
            Scoring: self._on_scoring,
            Quality: self._on_quality,
            Failed: self._on_failed,
            Done: lambda e: None,
        }
        for event in events:
            handlers[type(event)](event)

    def _on_loading(self, e: Loading) -> None:
        self._index = e.index
        self.status.value = f"loading {e.scheme} ({e.index + 1}/{e.count})…"

    def _on_loaded(self, e: Loaded) -> None:
        head, body, _, speed = self._cell(e.scheme)
        self.texts[e.scheme] = []

        def show(live: LiveStats | None) -> None:
            body.value = pre("\n\n".join(self.texts[e.scheme]))
            speed.value = speed_line(live) if live is not None else ""

        self._show_text = Throttle(show, SPEED_INTERVAL)
        mb, s = e.facts.get("weights_memory_bytes"), e.facts.get("load_s")
        head.value = (
            f"<b>{e.scheme}</b> · {metric('weights_memory_bytes').label} "
            f"{metric('weights_memory_bytes').show(mb or 0):.0f} · "
            f"{metric('load_s').label} {s or 0:.1f}"
        )
        self.progress.value += 1

    def _on_token(self, e: Token) -> None:
        texts = self.texts[e.scheme]
        while len(texts) <= e.prompt_index:
            texts.append("")
        texts[e.prompt_index] += e.text
        if e.live is not None:
            self._lives[e.scheme] = e.live
        self._show_text(e.live)

    def _on_row(self, e: Row) -> None:
        add(self.records, e)
        texts = self.texts.setdefault(e.scheme, [])
        n = sum(1 for r in self.records if r.get("scheme") == e.scheme and not r.get("error"))
        while len(texts) < n:
            texts.append("")
        texts[n - 1] = e.record.get("text", "")  # the final text of the n-th prompt
        self._show_text.flush()
        self._cell(e.scheme)[1].value = pre("\n\n".join(texts))
        live = self._lives.pop(e.scheme, None)  # this row's generation, when its text streamed
        self._cell(e.scheme)[3].value = speed_line(live) if live is not None and live.done else ""
        self.status.value = f"{e.scheme}: prompt {n}/{self._prompts}"
        self.progress.value += 1
        self._redraw_soon(None)

    def _on_scoring(self, e: Scoring) -> None:
        self.status.value = f"{e.scheme}: measuring quality…"

    def _on_quality(self, e: Quality) -> None:
        add(self.records, e)
        self._redraw()

    def _on_failed(self, e: Failed) -> None:
        add(self.records, e)
        self._cell(e.scheme)[2].value = message_html(e.message, e.fix)
        self.progress.value = min(self.progress.max, (self._index + 1) * (1 + self._prompts))
        self._redraw()

    def _cell(self, scheme: str) -> tuple[w.HTML, w.HTML, w.HTML, w.HTML]:
        if (
            scheme not in self.cells
        ):  # an alias given in code: the sweep names the scheme by its name
            scheme = llamalab.scheme(scheme).name
        return self.cells[scheme]

    # ---------------------------------------------------------------- drawing

    def _redraw(self) -> None:
        update_figure(self.figure, arena_figure(self.records))
        self.table.value = html_table(
            self._table_rows(),
            self._table_columns(),
            {k: metric(k).label for k in (*TABLE, *QUALITY_METRICS)},
        )

    @property
    def summary(self):
        """One row per scheme (`llamalab.summarize`): medians of its rows, load facts, the error if
        it failed, as a DataFrame."""
        return summarize(self.records)

    def _summary_rows(self) -> list[dict]:
        """The summary's rows as dicts, with None where nothing was measured."""
        return [
            {k: (None if v != v else v) for k, v in row.items()}
            for row in self.summary.to_dict("records")
        ]

    def _table_rows(self) -> list[dict]:
        rows = []
        for r in self._summary_rows():
            rows.append(
                {
                    k: (metric(k).show(v) if v is not None and k in TABLE else v)
                    for k, v in r.items()
                }
            )
        return rows

    def _table_columns(self) -> dict:
        cols = {"scheme": None, **{k: f"{{:{fmt}}}".format for k, fmt in TABLE.items()}}
        for key in QUALITY_METRICS:
            if any(r.get(key) is not None for r in self._summary_rows()):
                cols[key] = "{:.4g}".format
        cols["error"] = None
        return cols

    def _finish(self) -> None:
        self._redraw()
        ok = sum(1 for r in self._summary_rows() if not r.get("error") and r.get("runs"))
        stopped = self.task is not None and self.task.stopping
        if not stopped:
            self.progress.value = self.progress.max
        self.status.value = f"{'stopped' if stopped else 'done'}: {ok} scheme(s) measured"
        self.progress.bar_style = "success"
        self.run_button.disabled, self.stop_button.disabled = False, True


def _settings(settings: SweepSettings | None, overrides: dict) -> SweepSettings:
    """The Arena's defaults: 48 tokens, not forced to full length (answers read naturally)."""
    base = settings or SweepSettings(max_new_tokens=48, fixed_length=False)
    return with_changes(base, **overrides)


def _device(device: str) -> str:
    return resolve_device(device).split(":")[0]
