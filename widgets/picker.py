"""ModelPicker: choose model, scheme and device, see the estimate and whether it fits, then Load.

Combinations the capability table (`llamalab.capabilities()`) says cannot run here are disabled with
its reason and fix. Loading runs as a background Task; afterwards the picker shows load time and the
measured weights in memory next to the estimate, and exposes the `LoadedModel` as `picker.loaded`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import ipywidgets as w

import llamalab
from llamalab import LoadedModel, metric
from llamalab.runtime import check_scheme, resolve_device
from llamalab.runtime.files.source import is_cached

from ._common import (
    Background,
    ErrorBox,
    background,
    gb,
    guarded,
    html_table,
    launch,
    mb,
    message_html,
)

DEFAULT_LABEL = "SmolLM2 135M Instruct (embedded)"


def model_options() -> list[tuple[str, str]]:
    """(label, name) for the embedded default and every catalog model; ✓ = loads offline now."""
    opts = [(f"✓ {DEFAULT_LABEL} · default", "default")]
    for row in llamalab.models().itertuples():
        cached = is_cached(llamalab.card(row.name))
        opts.append(
            (
                f"{'✓' if cached else '·'} {row.display}{'' if cached else ' (not downloaded)'}",
                row.name,
            )
        )
    return opts


def capability() -> dict[tuple[str, str], str]:
    """(scheme, device) → reason for every combination that cannot run on this machine."""
    table = llamalab.capabilities()
    return {(r.scheme, r.device): r.reason for r in table.itertuples() if not r.available}


class ModelPicker(Background, w.VBox):
    """Model, scheme, device → live estimate and fit; Load → `self.loaded` (a LoadedModel)."""

    def __init__(
        self,
        model: str = "default",
        scheme: str = "bf16",
        device: str = "auto",
        context: int = 2048,
    ):
        self.errors = ErrorBox()
        self.availability_text = ""
        self.unavailable = capability()
        self.loaded: LoadedModel | None = None
        self._listeners: list[Callable[[LoadedModel], None]] = []
        self.model = w.Dropdown(
            options=model_options(),
            value=model,
            description="Model",
            layout=w.Layout(width="460px"),
        )
        self.device = w.ToggleButtons(
            options=["cpu", "cuda"],
            value=resolve_device(device).split(":")[0],
            description="Device",
            style={"button_width": "70px"},
        )
        self.scheme = w.Dropdown(description="Scheme", layout=w.Layout(width="460px"))
        self.context = w.BoundedIntText(
            value=context,
            min=1,
            max=1_048_576,
            step=256,
            description="Context",
            layout=w.Layout(width="220px"),
        )
        self.force = w.Checkbox(
            value=False, description="force (skip the memory check)", indent=False
        )
        self.availability = w.HTML()
        self.estimate_html = w.HTML()
        self.load_button = w.Button(description="Load", button_style="primary", icon="download")
        self.progress = w.FloatProgress(
            value=0, min=0, max=1, layout=w.Layout(width="300px", visibility="hidden")
        )
        self.status = w.HTML()
        self.result_html = w.HTML()
        self._fill_schemes(scheme)
        on_change = guarded(self.errors)(self._refresh)
        for c in (self.model, self.scheme, self.context):
            c.observe(on_change, "value")
        self.device.observe(guarded(self.errors)(self._on_device), "value")
        self.load_button.on_click(lambda _: self.load())
        super().__init__(
            children=[
                self.model,
                w.HBox([self.scheme, self.device]),
                w.HBox([self.context, self.force]),
                self.availability,
                self.estimate_html,
                w.HBox([self.load_button, self.progress, self.status]),
                self.result_html,
                self.errors,
            ]
        )
        self.add_class("llamalab-picker")
        on_change()

    # ---------------------------------------------------------------- choices

    def _fill_schemes(self, keep: str | None = None) -> None:
        """Scheme options for the chosen device;
        the ones that cannot run here say so in their label."""
        dev = self.device.value
        opts = [
            (s if (s, dev) not in self.unavailable else f"{s} — not available on {dev}", s)
            for s in llamalab.catalog.scheme_names()
        ]
        current = keep or self.scheme.value
        self.scheme.options = opts
        self.scheme.value = current if current in {v for _, v in opts} else opts[0][1]

    def _on_device(self, _=None) -> None:
        self._fill_schemes()
        self._refresh()

    def reason(self, scheme: str | None = None, device: str | None = None) -> str | None:
        """Why (scheme, device) cannot run here, or None if it can."""
        return self.unavailable.get((scheme or self.scheme.value, device or self.device.value))

    # ---------------------------------------------------------------- estimate and fit

    def _refresh(self, _=None) -> None:
        """Recompute the estimate and the fit; disable Load (with the reason and fix)
        if it cannot run."""
        self.errors.clear()
        self.availability.value = ""
        blocked = self._check_runnable()
        est = self.estimate
        budget = llamalab.hardware().budget_bytes(self.device.value)
        self.estimate_html.value = _estimate_html(est, budget, self.device.value)
        self.load_button.disabled = blocked or self.busy
        self.load_button.tooltip = (
            self.availability_text or "Load this model in a background thread"
        )

    def _check_runnable(self) -> bool:
        """Show the library's SchemeUnavailable/BackendMissing message for this choice;
        True if blocked."""
        self.availability_text = ""
        if self.reason() is None:
            return False
        try:
            check_scheme(llamalab.scheme(self.scheme.value), self.device.value)
        except llamalab.LlamalabError as e:
            self.availability_text = e.message
            self.availability.value = message_html(e.message, e.fix, "warning")
            return True
        return False

    @property
    def estimate(self):
        """The library's estimate for the current choice (the one shown)."""
        return llamalab.estimate(
            self.model.value, self.scheme.value, self.context.value, device=self.device.value
        )

    # ---------------------------------------------------------------- loading

    def on_loaded(self, callback: Callable[[LoadedModel], None]) -> None:
        """Call `callback(loaded)` after every successful load."""
        self._listeners.append(callback)

    def load(self, wait: bool = False) -> None:
        """What the Load button does: load in a background task (`wait=True` blocks until done)."""
        launch(self, wait)

    def _start(self) -> None:
        args = (
            self.model.value,
            self.scheme.value,
            self.device.value,
            self.context.value,
            self.force.value,
        )
        self._set_busy(True)
        self.task = background(
            self, lambda task: self._load(*args), lambda: self._set_busy(False), "load"
        )

    def _load(self, model, scheme, device, context, force) -> None:
        if self.loaded is not None:  # free the old model first: two big models may not fit together
            old, self.loaded = self.loaded, None
            old.stop()
            old.unload()
        weights = llamalab.estimate(model, scheme, context, device=device).breakdown["weights"]
        with llamalab.Monitor(interval=0.25, on_sample=self._progress_reporter(weights, device)):
            loaded = llamalab.load(model, scheme, device, force=force, context=context)
        self.loaded = loaded
        self.progress.value = 1.0
        self.status.value = f"<b>loaded</b> {loaded.name} · {loaded.scheme_name} · {loaded.device}"
        self.result_html.value = _result_html(loaded)
        for cb in self._listeners:
            cb(loaded)

    def _progress_reporter(self, weights: int, device: str) -> Callable:
        """Rough progress from Monitor samples: memory grown since the load began ÷ the estimated
        weight bytes (capped at 95 %; the measured figures replace it when the load ends)."""
        t0, base = time.perf_counter(), []

        def report(s) -> None:
            now = s.cuda_allocated_bytes if device == "cuda" else s.rss_bytes
            base[:] = base or [now]
            grown = max(now - base[0], 0)
            self.progress.value = min(0.95, max(0.02, grown / max(weights, 1)))
            self.status.value = f"loading… {time.perf_counter() - t0:.1f} s · +{mb(grown)} so far"

        return report

    def _set_busy(self, busy: bool) -> None:
        for c in (self.model, self.scheme, self.device, self.context, self.force):
            c.disabled = busy
        self.progress.layout.visibility = "visible" if busy or self.loaded else "hidden"
        if busy:
            self.progress.value, self.progress.bar_style = 0.02, "info"
            self.status.value, self.result_html.value = "loading…", ""
        else:
            self.progress.bar_style = "success" if self.loaded else "danger"
            if self.loaded is None:
                self.status.value = "<b>not loaded</b>"
        self.load_button.disabled = busy or self.reason() is not None


def _estimate_html(est, budget: int, device: str) -> str:
    rows = [{"part": k, "size": gb(v)} for k, v in est.breakdown.items()]
    rows.append({"part": "total", "size": gb(est.total_bytes)})
    if est.load_transient_bytes:
        rows.append({"part": "load peak", "size": gb(est.load_peak_bytes)})
    fits = est.fits(budget)
    where = "this machine's available RAM" if device == "cpu" else "free GPU memory"
    verdict = (
        f"<span class='llamalab-fit' data-fits='{str(fits).lower()}'>"
        f"{'✓ fits' if fits else '✗ does not fit'}: needs {gb(est.peak_bytes)}, "
        f"{where} is {gb(budget)}</span>"
    )
    return (
        f"<div class='llamalab-estimate'>Estimate for context {est.context} "
        f"({est.scheme}, {device}):{html_table(rows, {'part': None, 'size': None})}{verdict}</div>"
    )


def _result_html(m: LoadedModel) -> str:
    d = m.to_dict()
    estimated_peak = mb(d["estimated_load_peak_bytes"])
    row = {
        "load time": f"{m.load_s:.2f} s",
        "estimated weights": gb(d["estimated_weights_bytes"]),
        "weights in memory (measured)": gb(m.weights_memory_bytes),
        "error": f"{m.estimate_error_pct:+.1f} %",
        m.load_memory_kind: mb(m.load_memory_delta_bytes),
        "peak while loading": f"{mb(m.load_peak_bytes)} (est. {estimated_peak})",
    }
    for key in ("load_anon_bytes", "load_file_bytes", "load_container_bytes"):
        if d.get(key) is not None:  # by kind: what the process allocated, mapped, the container
            row[metric(key).label.replace(" (MB)", "")] = mb(d[key])
    return (
        "<div class='llamalab-load-result'>" + html_table([row], {k: None for k in row}) + "</div>"
    )


def loaded_from(source, widget: str) -> LoadedModel:
    """The model a widget works on: a LoadedModel, or a ModelPicker's current one; none loaded is
    an error that says what to do."""
    m = source.loaded if isinstance(source, ModelPicker) else source
    if m is None or not m.is_loaded:
        raise llamalab.InvalidSetting(
            "No model is loaded.",
            f"Press Load in the model picker first, or pass a LoadedModel: "
            f"{widget}(llamalab.load()).",
        )
    return m
