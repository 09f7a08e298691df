"""TrainerPanel: fine-tune with buttons — data preview, settings (their help as tooltips), Train /
Stop / Resume, live curves (batched ≤ 4 Hz, re-synced at the end),
before/after outputs side by side, errors inline.

    panel = TrainerPanel(loaded, data="house-format"); display(panel)
Everything it does is `llamalab.finetune(...)`, `run.stop()`, `run.resume()`,
`loaded.generate(...)`."""

from __future__ import annotations

import dataclasses
import html
import threading
import time

import ipywidgets as w
import plotly.graph_objects as go

from llamalab import FinetuneSettings, LlamalabError, conversations, finetune, preview
from llamalab.catalog.training import method, method_names
from llamalab.plots import resync
from llamalab.plots.finetune import apply_history, training_figure

from ._common import Background, ErrorBox, background, guarded

TRAINED = (
    "This model already carries the adapter trained here: training again would train on top of it.",
    "Load a fresh base (llamalab.load(...)) and make a new TrainerPanel for it to train again.",
)
SHOWN = ("method", "steps", "lr", "r", "alpha", "target_modules", "batch", "max_length")


class TrainerPanel(Background, w.VBox):
    """Fine-tune `loaded` (a LoadedModel, trained in place) on `data` and watch it."""

    def __init__(self, loaded, data="house-format", prompts=None, max_hz: float = 4.0, **defaults):
        self.loaded, self.data, self.run = loaded, data, None
        self.min_push_s, self._last_push, self._lock = 1.0 / max_hz, 0.0, threading.Lock()
        self.pushes = 0
        self.prompts = prompts or [c[:-1] for c in conversations("house-format-heldout")[:3]]
        self.errors = ErrorBox()
        self.controls = self._controls({"method": "lora", **defaults})
        self.train_b, self.stop_b, self.resume_b = (
            w.Button(description=d) for d in ("Train", "Stop", "Resume")
        )
        self.stop_b.disabled = self.resume_b.disabled = True
        self.train_b.on_click(guarded(self.errors)(lambda _: self.train()))
        self.stop_b.on_click(guarded(self.errors)(lambda _: self.stop()))
        self.resume_b.on_click(guarded(self.errors)(lambda _: self.resume()))
        self.figure = go.FigureWidget(training_figure())
        self.status = w.HTML("<i>idle</i>")
        self.outputs = w.HTML()
        self.before: list[str] = []
        data_box = w.HTML(preview(data).to_html(index=False))
        super().__init__(
            children=[
                w.Accordion([data_box], titles=("Data preview",)),
                w.HBox(list(self.controls.values())[:4]),
                w.HBox(list(self.controls.values())[4:]),
                w.HBox([self.train_b, self.stop_b, self.resume_b]),
                self.errors,
                self.figure,
                self.status,
                self.outputs,
            ]
        )

    def _controls(self, defaults: dict) -> dict:
        fields = {f.name: f for f in dataclasses.fields(FinetuneSettings)}
        out = {
            "method": w.Dropdown(
                options=method_names(),
                value=defaults["method"],
                description="method",
                tooltip=" · ".join(f"{m}: {method(m).help}" for m in method_names()),
            )
        }
        for name in SHOWN[1:]:
            f, value = fields[name], defaults.get(name, fields[name].default)
            kind = {int: w.IntText, float: w.FloatText}.get(type(value), w.Text)
            out[name] = kind(
                value=value,
                description=name,
                tooltip=f.metadata["help"],
                layout=w.Layout(width="220px"),
            )
        return out

    def settings(self) -> dict:
        return {k: c.value for k, c in self.controls.items() if k != "method"}

    # ------------------------------------------------------------------ actions
    def train(self) -> None:
        """Score the 'before' outputs, then start a run with the panel's settings."""
        if self.busy or (self.run is not None and not self.run.done):
            return
        if self.run is not None and self.run.status == "done":
            raise LlamalabError(*TRAINED)
        self.errors.clear()

        def job(task):
            self.before = [self.loaded.generate(p, max_new_tokens=24).text for p in self.prompts]
            self.run = finetune(
                self.loaded, self.data, self.controls["method"].value, **self.settings()
            )
            self._follow()

        self._busy(True)
        self.task = background(self, job, self._finished, "trainer")

    def stop(self) -> None:
        """End the run after the current step (a checkpoint is kept for Resume)."""
        if self.run is not None:
            self.run.stop()

    def resume(self) -> None:
        if self.run is None or self.busy:
            return
        self.errors.clear()

        def job(task):
            self.run.resume()
            self._follow()

        self._busy(True)
        self.task = background(self, job, self._finished, "trainer")

    # ------------------------------------------------------------------ live view
    def _follow(self) -> None:
        run = self.run
        run.on_step(lambda _: self._maybe_push())
        run.wait()

    def _maybe_push(self) -> None:
        if time.perf_counter() - self._last_push >= self.min_push_s:
            self.push()

    def push(self, final: bool = False) -> None:
        """One batched figure update (all of the history); a full re-sync when `final`."""
        with self._lock:
            self._last_push = time.perf_counter()
            history = self.run.history if self.run is not None else []
            with self.figure.batch_update():
                apply_history(self.figure, history)
            if final:
                resync(self.figure)
            self.pushes += 1
        self.status.value = self._status()

    def _status(self) -> str:
        r = self.run
        if r is None:
            return "<i>idle</i>"
        h = r.history
        loss = f" · loss {h.loss.iloc[-1]:.3f}" if len(h) else ""
        return (
            f"{r.status} · step {r.step}/{r.total_steps}{loss} · "
            f"trainable {r.trainable_params:,} of {r.total_params:,}"
        )

    def _finished(self) -> None:
        self.push(final=True)
        if self.run is not None and self.run.status == "done" and self.before:
            after = [self.loaded.generate(p, max_new_tokens=24).text for p in self.prompts]
            self.outputs.value = _side_by_side(self.prompts, self.before, after)
        self._busy(False)

    def _busy(self, busy: bool) -> None:
        trained = self.run is not None and self.run.status == "done"
        self.train_b.disabled = busy or trained
        self.train_b.tooltip = TRAINED[0] if trained else ""
        self.stop_b.disabled = not busy
        self.resume_b.disabled = busy or self.run is None or self.run.status != "stopped"


def _side_by_side(prompts, before, after) -> str:
    cell = "<td style='white-space:pre-wrap;vertical-align:top;padding:4px'>{}</td>"
    rows = "".join(
        "<tr>" + "".join(cell.format(html.escape(x)) for x in (p[-1]["content"], b, a)) + "</tr>"
        for p, b, a in zip(prompts, before, after)
    )
    return (
        "<table class='llamalab-before-after'><tr><th>prompt</th><th>before</th><th>after</th></tr>"
        f"{rows}</table>"
    )
