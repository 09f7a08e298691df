"""CostCalculator: open vs closed at scale. Model, scheme, GPU and API with every price editable
(each shows its date and source) → monthly cost curves of the API and of self-hosting, and the
break-even volume. Pure arithmetic from `llamalab.cost_at_scale`: instant, no torch.
"""

from __future__ import annotations

import html

import ipywidgets as w
import plotly.graph_objects as go

import llamalab
from llamalab import CostAssumptions, cost_at_scale
from llamalab.catalog.prices import prices
from llamalab.plots import update_figure
from llamalab.plots.cost import cost_figure

from ._common import ErrorBox, guarded

DEFAULTS = CostAssumptions()


class CostCalculator(w.VBox):
    """Every change recomputes at once; `self.result` is the CostAtScale behind the plot."""

    def __init__(
        self,
        model: str = "llama-3.1-70b",
        scheme: str = "int8",
        gpu: str = "h100-80gb",
        api: str = "gpt-4o",
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
            options=[(a.display, a.name) for a in self._apis.values()],
            value=api,
            description="API",
            layout=w.Layout(width="420px"),
        )
        self.gpu_price = w.BoundedFloatText(description="$/GPU-hour", min=0, max=1000, step=0.01)
        self.api_in = w.BoundedFloatText(description="$/M input", min=0, max=1000, step=0.01)
        self.api_out = w.BoundedFloatText(description="$/M output", min=0, max=1000, step=0.01)
        self.input_share = w.FloatSlider(
            value=DEFAULTS.input_share, min=0, max=1, step=0.05, description="input share"
        )
        self.utilization = w.FloatSlider(
            value=DEFAULTS.utilization, min=0, max=1, step=0.05, description="utilization"
        )
        self.efficiency = w.FloatSlider(
            value=DEFAULTS.efficiency, min=0.05, max=1, step=0.05, description="of roofline"
        )
        self.sources = w.HTML()
        self.answer = w.HTML()
        self.figure = go.FigureWidget()
        self._fill_prices()
        recompute = guarded(self.errors)(self.recompute)
        self.gpu.observe(lambda _: (self._fill_prices(), recompute()), "value")
        self.api.observe(lambda _: (self._fill_prices(), recompute()), "value")
        for c in (
            self.model,
            self.scheme,
            self.gpu_price,
            self.api_in,
            self.api_out,
            self.input_share,
            self.utilization,
            self.efficiency,
        ):
            c.observe(recompute, "value")
        super().__init__(
            children=[
                w.HBox([self.model, self.scheme]),
                w.HBox([self.gpu, self.gpu_price]),
                w.HBox([self.api, self.api_in, self.api_out]),
                w.HBox([self.input_share, self.utilization, self.efficiency]),
                self.sources,
                self.errors,
                self.answer,
                self.figure,
            ]
        )
        self.add_class("llamalab-cost")
        recompute()

    def _fill_prices(self) -> None:
        """Put the price list's figures for the chosen GPU and API into the editable boxes."""
        hour, api = self._hours[self.gpu.value], self._apis[self.api.value]
        self.gpu_price.value = hour.usd_per_hour
        self.api_in.value, self.api_out.value = api.input_usd_per_mtok, api.output_usd_per_mtok
        self.sources.value = (
            "<small>"
            f"GPU: {html.escape(hour.provider)}, {hour.date} — {html.escape(hour.source)}<br>"
            f"API: {html.escape(api.display)}, {api.date} — {html.escape(api.source)}<br>"
            "Prices are list prices entered by hand at those dates, never fetched: "
            "edit them.</small>"
        )

    def recompute(self, _=None) -> None:
        self.errors.clear()
        r = cost_at_scale(
            self.model.value,
            self.scheme.value,
            self.gpu.value,
            self.api.value,
            gpu_usd_per_hour=self.gpu_price.value,
            api_input_usd_per_mtok=self.api_in.value,
            api_output_usd_per_mtok=self.api_out.value,
            input_share=self.input_share.value,
            utilization=self.utilization.value,
            efficiency=self.efficiency.value,
        )
        self.result = r
        update_figure(self.figure, cost_figure(r))
        self.answer.value = (
            f"<b class='llamalab-break-even'>{html.escape(str(r))}</b><br>"
            + "<br>".join(f"<i>{html.escape(n)}</i>" for n in r.notes)
        )
