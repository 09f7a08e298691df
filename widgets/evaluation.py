"""Evaluation on your own data: pick a bundled task or paste your own rows (one JSON object per
line), a scorer, how many examples; Run scores the model row by row (live: rows done, the score so
far), Stop ends it after the current example with the rows done, and the result shows the score
with its 95 % interval and every reply.

`llamalab.Evaluator` does the work (in a background Task, so the kernel stays free).
"""

from __future__ import annotations

import html
import json

import ipywidgets as w

from llamalab import Evaluation, Evaluator, LoadedModel, scorers
from llamalab.data import DATASETS
from llamalab.measure.examples import json_lines

from ._common import Background, ErrorBox, Throttle, background, html_table, launch
from .picker import ModelPicker, loaded_from

OWN = "your own rows (below)"
EXAMPLE_ROWS = (
    '{"prompt": "What is the capital of Italy? Answer with one word.", "expected": "Rome"}\n'
    '{"prompt": "What is the capital of Spain? Answer with one word.", "expected": "Madrid"}'
)


class EvaluationPanel(Background, w.VBox):
    """Data + scorer → `llamalab.Evaluator(...)(model)`, row by row, with Stop.

    `source`: a LoadedModel (in-process, `server.connect()`, `llamalab.connect(...)`) or a
    ModelPicker (its current model). `stop()` ends after the current example; the result holds
    the rows done."""

    def __init__(
        self,
        source: LoadedModel | ModelPicker | None = None,
        data: str = "known-answers",
        scorer: str = "contains",
        n: int = 12,
        max_new_tokens: int = 32,
    ):
        self.source = source
        self.errors = ErrorBox()
        self.last: Evaluation | None = None
        self.rows_done: list[dict] = []
        wide = {"description_width": "90px"}
        self.data = w.Dropdown(options=[*DATASETS, OWN], value=data, description="Data", style=wide)
        self.own = w.Textarea(
            value=EXAMPLE_ROWS,
            description="Your rows",
            placeholder='one JSON object per line: {"prompt": "...", "expected": "..."}',
            layout=w.Layout(width="98%", height="80px"),
            style=wide,
        )
        self.scorer = w.Dropdown(
            options=list(scorers.SCORERS), value=scorer, description="Scorer", style=wide
        )
        self.n = w.BoundedIntText(value=n, min=1, max=10_000, description="Examples", style=wide)
        self.max_new_tokens = w.IntSlider(
            value=max_new_tokens, min=1, max=256, description="Max tokens", style=wide
        )
        self.run_button = w.Button(description="Run", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.state = w.HTML(value="<span class='llamalab-state'>idle</span>")
        self.progress = w.HTML()
        self.result = w.HTML()
        self.table = w.HTML()
        self._show_progress = Throttle(self._progress, interval=0.2)
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.stop())
        self.data.observe(lambda _: self._own_visible(), "value")
        super().__init__(
            children=[
                w.HBox([self.data, self.scorer]),
                self.own,
                w.HBox([self.n, self.max_new_tokens]),
                w.HBox([self.run_button, self.stop_button, self.state]),
                self.errors,
                self.progress,
                self.result,
                self.table,
            ]
        )
        self._own_visible()
        self.add_class("llamalab-evaluation")

    @property
    def loaded(self) -> LoadedModel:
        return loaded_from(self.source, "EvaluationPanel")

    def run(self, wait: bool = False) -> None:
        """What the Run button does: check the data and scorer, then score in a background task."""
        launch(self, wait)

    def rows(self) -> list[dict]:
        """The pasted rows, parsed; a line that is not JSON is named with what to write."""
        return json_lines(self.own.value, "your rows")

    def _start(self) -> None:
        data = self.rows() if self.data.value == OWN else self.data.value
        evaluator = Evaluator(  # checks data and scorer now: a bad row shows before any generation
            data, self.scorer.value, n=self.n.value, max_new_tokens=self.max_new_tokens.value
        )
        model = self.loaded
        self.last, self.rows_done = None, []
        self.result.value = self.table.value = self.progress.value = ""
        self._busy(True)
        total = len(evaluator.examples.rows)
        self.task = background(
            self, lambda task: self._score(evaluator, model, task, total), self._finish, "evaluate"
        )

    def _score(self, evaluator: Evaluator, model: LoadedModel, task, total: int) -> None:
        def on_row(row: dict) -> None:
            self.rows_done.append(row)
            self._show_progress(total)

        self.last = evaluator(model, on_row=on_row, stop_event=task.stop_event)
        self._show_progress.flush()

    def _progress(self, total: int) -> None:
        done = self.rows_done
        scored = [r["score"] for r in done if r["score"] == r["score"]]  # NaN: a failed row
        mean = f" · score so far {sum(scored) / len(scored):.2f}" if scored else ""
        self.progress.value = (
            f"<div class='llamalab-progress'>{len(done)} of {total} rows{mean}</div>"
        )

    def _finish(self) -> None:
        self._busy(False)
        e = self.last
        stopped = self.task is not None and self.task.stopping
        if e is None:
            return
        note = " (stopped: the rows done so far)" if stopped else ""
        self.result.value = f"<div class='llamalab-verdict'>{html.escape(str(e))}{note}</div>"
        self.table.value = html_table(
            e.rows.to_dict("records"),
            {"prompt": _short, "expected": _short, "reply": _short, "score": _score, "error": None},
        )

    def _busy(self, busy: bool) -> None:
        self.run_button.disabled, self.stop_button.disabled = busy, not busy
        state = "scoring…" if busy else ("done" if self.last is not None else "idle")
        self.state.value = f"<span class='llamalab-state'>{state}</span>"

    def _own_visible(self) -> None:
        self.own.layout.display = None if self.data.value == OWN else "none"


def _short(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _score(value) -> str:
    return "—" if value != value else f"{value:.2f}"
