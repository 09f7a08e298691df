"""CostCalculator: open vs closed at scale. Model, scheme, GPU, the closed API and the same open
model hosted by a provider, with every price editable (each shows its date and source), batch,
utilization and both efficiencies → the volume ranges where each option is cheapest and the cost
per million tokens of all three against monthly volume. Pure arithmetic from
`llamalab.cost_at_scale`: instant, no torch.
"""

from __future__ import annotations

import html
import math
from contextlib import contextmanager

import ipywidgets as w
import plotly.graph_objects as go

import llamalab
from llamalab import CostAssumptions, cost_at_scale
from llamalab.catalog.prices import hosted_for, prices
from llamalab.core.settings import help_of
from llamalab.plan.cost import describe_ranges, tokens
from llamalab.plots import update_figure
from llamalab.plots.cost import cost_per_mtok_figure

from ._common import ErrorBox, guarded, html_table

DEFAULTS = CostAssumptions()
NONE = "none"


class CostCalculator(w.VBox):
    """Every change recomputes at once; `self.result` is the CostAtScale behind the plot."""

    def __init__(
        self,
        model: str = "llama-3.1-70b",
        scheme: str = "int8",
        gpu: str = "h100-80gb",
        api: str = "gpt-4o",
        hosted: str | None = "auto",
    ):
        self.errors = ErrorBox()
        self.result = None
        self._apis, self._hours = prices()
        models = llamalab.models()
        self.model = w.Dropdown(
            options=[(f"{r.display} ({r.params / 1e9:.1f}B)", r.name) for r in models.itertuples()],
            value=model,
            description="Model",
            layout=w.Layout(width="420px"),
        )
        self.scheme = w.Dropdown(
            options=llamalab.catalog.scheme_names(), value=scheme, description="Scheme"
        )
        self.gpu = w.Dropdown(
            options=[(llamalab.gpu(g).display, g) for g in self._hours],
            value=gpu,
            description="GPU",
        )
        self.api = w.Dropdown(
            options=[(a.display, a.name) for a in self._apis.values() if not a.model],
            value=api,
            description="API",
            layout=w.Layout(width="420px"),
        )
        self.hosted = w.Dropdown(description="Hosted", layout=w.Layout(width="420px"))
        self.gpu_price = w.BoundedFloatText(description="$/GPU-hour", min=0, max=1000, step=0.01)
        self.api_in = w.BoundedFloatText(description="$/M input", min=0, max=1000, step=0.01)
        self.api_out = w.BoundedFloatText(description="$/M output", min=0, max=1000, step=0.01)
        self.hosted_in = w.BoundedFloatText(description="$/M input", min=0, max=1000, step=0.01)
        self.hosted_out = w.BoundedFloatText(description="$/M output", min=0, max=1000, step=0.01)
        self.batch = w.BoundedIntText(
            value=DEFAULTS.batch,
            min=1,
            max=4096,
            description="batch",
            layout=w.Layout(width="180px"),
        )
        self.input_share = w.FloatSlider(
            value=DEFAULTS.input_share, min=0, max=1, step=0.05, description="input share"
        )
        self.utilization = w.FloatSlider(
            value=DEFAULTS.utilization, min=0, max=1, step=0.05, description="utilization"
        )
        self.efficiency = w.FloatSlider(
            value=DEFAULTS.efficiency, min=0.05, max=1, step=0.05, description="of roofline"
        )
        self.prefill_efficiency = w.FloatSlider(
            value=DEFAULTS.prefill_efficiency, min=0.05, max=1, step=0.05, description="prefill MFU"
        )
        for c, name in (
            (self.batch, "batch"),
            (self.utilization, "utilization"),
            (self.efficiency, "efficiency"),
            (self.prefill_efficiency, "prefill_efficiency"),
            (self.input_share, "input_share"),
        ):
            c.tooltip = help_of(CostAssumptions, name)
        self._quiet_depth = 0
        self.sources = w.HTML()
        self.answer = w.HTML()
        self.table = w.HTML()
        self.figure = go.FigureWidget()
        self._fill_hosted(hosted)
        self._fill_prices()
        recompute = guarded(self.errors)(self.recompute)
        self.model.observe(
            lambda _: (self._fill_hosted(), self._fill_prices(), recompute()), "value"
        )
        for c in (self.gpu, self.api, self.hosted):
            c.observe(lambda _: (self._fill_prices(), recompute()), "value")
        for c in (
            self.scheme,
            self.gpu_price,
            self.api_in,
            self.api_out,
            self.hosted_in,
            self.hosted_out,
            self.batch,
            self.input_share,
            self.utilization,
            self.efficiency,
            self.prefill_efficiency,
        ):
            c.observe(recompute, "value")
        super().__init__(
            children=[
                w.HBox([self.model, self.scheme]),
                w.HBox([self.gpu, self.gpu_price]),
                w.HBox([self.api, self.api_in, self.api_out]),
                w.HBox([self.hosted, self.hosted_in, self.hosted_out]),
                w.HBox([self.batch, self.utilization, self.input_share]),
                w.HBox([self.efficiency, self.prefill_efficiency]),
                self.sources,
                self.errors,
                self.answer,
                self.table,
                self.figure,
            ]
        )
        self.add_class("llamalab-cost")
        recompute()

    def _fill_hosted(self, choice: str | None = "auto") -> None:
        """The price list's providers of the chosen model (cheapest first), or none."""
        serving = sorted(
            hosted_for(self.model.value), key=lambda p: p.usd_per_token(self.input_share.value)
        )
        names = [p.name for p in serving]
        with self._quiet():
            self.hosted.options = [(p.display, p.name) for p in serving] + [
                ("none in the price list" if not serving else "leave out", NONE)
            ]
            self.hosted.value = choice if choice in names else (names[0] if names else NONE)

    def _fill_prices(self) -> None:
        """Put the price list's figures for the chosen GPU, API and provider into the editable
        boxes, with their date and source."""
        hour, api = self._hours[self.gpu.value], self._apis[self.api.value]
        hosted = self._apis.get(self.hosted.value)
        with self._quiet():
            self.gpu_price.value = hour.usd_per_hour
            self.api_in.value = api.input_usd_per_mtok
            self.api_out.value = api.output_usd_per_mtok
            for box in (self.hosted_in, self.hosted_out):
                box.disabled = hosted is None
            if hosted is not None:
                self.hosted_in.value = hosted.input_usd_per_mtok
                self.hosted_out.value = hosted.output_usd_per_mtok
        lines = [
            f"GPU: {html.escape(hour.provider)}, {hour.date} — {html.escape(hour.source)}",
            f"API: {html.escape(api.display)}, {api.date} — {html.escape(api.source)}",
        ]
        if hosted is not None:
            lines.append(
                f"Hosted: {html.escape(hosted.display)}, {hosted.date} — "
                f"{html.escape(hosted.source)}"
            )
        self.sources.value = (
            "<small>"
            + "<br>".join(lines)
            + "<br>Prices as of those dates: list prices entered by hand, never fetched. "
            "Edit them.</small>"
        )

    @contextmanager
    def _quiet(self):
        """Boxes filled from the price list do not each recompute: the caller recomputes once."""
        self._quiet_depth += 1
        try:
            yield
        finally:
            self._quiet_depth -= 1

    def recompute(self, _=None) -> None:
        if self._quiet_depth:
            return
        self.errors.clear()
        hosted = None if self.hosted.value in (NONE, None) else self.hosted.value
        prices_given = (
            dict(
                hosted_input_usd_per_mtok=self.hosted_in.value,
                hosted_output_usd_per_mtok=self.hosted_out.value,
            )
            if hosted
            else {}
        )
        r = cost_at_scale(
            self.model.value,
            self.scheme.value,
            self.gpu.value,
            self.api.value,
            hosted=hosted,
            gpu_usd_per_hour=self.gpu_price.value,
            api_input_usd_per_mtok=self.api_in.value,
            api_output_usd_per_mtok=self.api_out.value,
            batch=self.batch.value,
            input_share=self.input_share.value,
            utilization=self.utilization.value,
            efficiency=self.efficiency.value,
            prefill_efficiency=self.prefill_efficiency.value,
            **prices_given,
        )
        self.result = r
        update_figure(self.figure, cost_per_mtok_figure(r))
        self.answer.value = (
            f"<b class='llamalab-break-even'>Cheapest: "
            f"{html.escape(describe_ranges(r.ranges, r.label))}.</b><br>"
            + html.escape(str(r))
            + "<br>"
            + "<br>".join(f"<i>{html.escape(n)}</i>" for n in r.notes)
        )
        self.table.value = html_table(
            [
                {
                    "from": tokens(rg.start),
                    "to": "∞" if math.isinf(rg.end) else tokens(rg.end),
                    "cheapest": r.label(rg.option),
                }
                for rg in _shown(r.ranges)
            ],
            {"from": None, "to": None, "cheapest": None},
            {"from": "tokens/month from", "to": "to", "cheapest": "cheapest"},
            cls="llamalab-table llamalab-cost-ranges",
        )


def _shown(ranges, most: int = 12):
    """The ranges a table shows: all, or the first and last few of a long alternation."""
    if len(ranges) <= most:
        return list(ranges)
    return [*ranges[: most // 2], *ranges[-(most // 2) :]]
