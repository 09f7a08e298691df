"""MemoryCalculator: model (or custom size), scheme, context, batch, mode → the memory breakdown as
a stacked bar against every GPU in the hardware table, plus the answers of `llamalab.sizing()` for
the chosen GPU (fits, how many, longest context, best scheme). Pure arithmetic from
`llamalab.estimate`: instant, no torch.
"""

from __future__ import annotations

import ipywidgets as w
import plotly.graph_objects as go

import llamalab
from llamalab import custom_card, sizing
from llamalab.plan.estimator import MODES
from llamalab.plan.parallel import ENGINES
from llamalab.plots import breakdown_figure, update_figure

from ._common import ErrorBox, gb, guarded

CUSTOM = "custom"
THIS = "this machine"
GPUS = [llamalab.gpu(name) for name in llamalab.catalog.gpu_names()]


class MemoryCalculator(w.VBox):
    """Every change recomputes at once; `self.last_sizing` is the Sizing behind the bar and the
    answers."""

    def __init__(
        self,
        model: str = "llama-3.1-8b",
        scheme: str = "bf16",
        context: int = 4096,
        batch: int = 1,
        mode: str = "inference",
        gpu: str = "h100-80gb",
    ):
        self.errors = ErrorBox()
        self.last_sizing = None
        cat = llamalab.models()
        self.model = w.Dropdown(
            options=[(f"{r.display} ({r.params / 1e9:.1f}B)", r.name) for r in cat.itertuples()]
            + [("Custom size…", CUSTOM)],
            value=model,
            description="Model",
            layout=w.Layout(width="420px"),
        )
        self.params_b = w.BoundedFloatText(
            value=7.0,
            min=0.01,
            max=10_000,
            step=0.5,
            description="Params (B)",
            layout=w.Layout(width="200px", display="none"),
        )
        self.scheme = w.Dropdown(
            options=llamalab.catalog.scheme_names(), value=scheme, description="Scheme"
        )
        self.context = w.BoundedIntText(
            value=context, min=1, max=1_048_576, step=1024, description="Context"
        )
        self.batch = w.BoundedIntText(value=batch, min=1, max=4096, description="Batch")
        self.mode = w.ToggleButtons(
            options=list(MODES), value=mode, description="Mode", style={"button_width": "90px"}
        )
        self.engine = w.Dropdown(
            options=[("auto (GGUF: llama.cpp)", None)] + [(e, e) for e in ENGINES],
            value=None,
            description="Engine",
            tooltip="Whose prefill and overheads count: transformers prefills the "
            "whole prompt at once; vLLM and llama.cpp in chunks (training: transformers only).",
        )
        self.gpu = w.Dropdown(
            options=[(g.display, g.name) for g in GPUS] + [(THIS, "this")],
            value=gpu,
            description="GPU",
        )
        self.answers = w.HTML()
        self.figure = go.FigureWidget(breakdown_figure([], GPUS))
        recompute = guarded(self.errors)(self.recompute)
        for c in (
            self.model,
            self.params_b,
            self.scheme,
            self.context,
            self.batch,
            self.mode,
            self.engine,
            self.gpu,
        ):
            c.observe(recompute, "value")
        super().__init__(
            children=[
                w.HBox([self.model, self.params_b]),
                w.HBox([self.scheme, self.gpu]),
                w.HBox([self.context, self.batch]),
                w.HBox([self.mode, self.engine]),
                self.errors,
                self.answers,
                self.figure,
            ]
        )
        self.add_class("llamalab-calculator")
        recompute()

    @property
    def card(self):
        """The chosen catalog card, or a custom one shaped like the nearest catalog model."""
        if self.model.value == CUSTOM:
            return custom_card(self.params_b.value)
        return llamalab.card(self.model.value)

    @property
    def last_estimate(self):
        """The Estimate behind the bar."""
        return self.last_sizing.estimate if self.last_sizing else None

    def recompute(self, _=None) -> None:
        """One sizing (estimate + answers for the chosen GPU) → the bar and the answers."""
        self.errors.clear()
        self.params_b.layout.display = None if self.model.value == CUSTOM else "none"
        c = self.card
        p = sizing(
            c,
            self.scheme.value,
            self.gpu.value,
            self.context.value,
            self.batch.value,
            self.mode.value,
            engine=self.engine.value if self.mode.value == "inference" else None,
        )
        self.last_sizing = p
        est = p.estimate
        fig = breakdown_figure([est], GPUS, title=f"{c.display} · {est.scheme} · {est.mode}")
        update_figure(self.figure, fig)
        self.answers.value = self._answers(c, p)

    def _answers(self, c, p) -> str:
        est, name, n, longest, best = (
            p.estimate,
            self.gpu.label,
            p.devices_needed,
            p.max_context,
            p.best_scheme,
        )
        fits_on = [llamalab.gpu(g).display for g in p.fits_on]
        parts = " + ".join(f"{k} {gb(v)}" for k, v in est.breakdown.items() if v)
        lines = [
            f"<b>Total {gb(est.total_bytes)}</b> ({parts})",
            f"Fits on one: {', '.join(fits_on) if fits_on else 'no single GPU in the table'}",
            f"On <b>{name}</b>: needs <b>{n or 'more than fits a cluster'}</b> of them"
            + (
                " (tensor parallel 1/2/4/8, then pipeline stages: as deployment_plan)"
                if n > 1
                else ""
            ),
            f"Longest context that fits on {name} with {est.scheme}: "
            f"<b class='llamalab-max-context'>{longest:,} tokens</b>"
            + (f" (model limit {c.context:,})" if longest == c.context else ""),
            f"Best scheme for {name} at context {self.context.value:,}: "
            f"<b class='llamalab-best-scheme'>{best or 'none fits'}</b> ({p.best_scheme_why})",
            *(f"<i>{note}</i>" for note in est.notes),
        ]
        return "<div class='llamalab-answers'>" + "<br>".join(lines) + "</div>"
