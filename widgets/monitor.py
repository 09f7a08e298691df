"""LiveMonitor: memory (RSS, CUDA allocated/reserved)
and tokens/s over time in a plotly FigureWidget.

Fed by `llamalab.Monitor`; updates the figure in batches at most `max_hz` times a second, and
re-syncs the full figure state when stopped, so a reload or a Voilà view shows the real data.

    live = LiveMonitor(); display(live)
    with live:
        loaded.generate("Tell me a story", max_new_tokens=200)
"""

from __future__ import annotations

import threading
import time

import ipywidgets as w
import plotly.graph_objects as go

from llamalab import Monitor, Sample
from llamalab.core.metrics import label, metric
from llamalab.plots import apply_samples, monitor_figure, resync


class LiveMonitor(w.VBox):
    """A live memory/speed plot. `start()`/`stop()` (or `with live:`) may be called repeatedly: each
    run continues the time axis and is drawn as its own line segment."""

    def __init__(
        self,
        interval: float = 0.25,
        max_hz: float = 4.0,
        max_points: int = 7200,
        live_points: int = 600,
        title: str = "Memory and speed",
        height: int = 300,
    ):
        self.interval, self.min_push_s, self.max_points = interval, 1.0 / max_hz, max_points
        self.live_points = live_points
        self.records: list[dict] = []
        self.figure = go.FigureWidget(monitor_figure([], title=title, height=height))
        self.label = w.HTML(value="<i>idle</i>")
        self.monitor: Monitor | None = None
        self.pushes = 0
        self._run, self._t0, self._offset, self._last_push = -1, None, 0.0, 0.0
        self._lock = threading.Lock()
        super().__init__(children=[self.figure, self.label])
        self.add_class("llamalab-live-monitor")

    @property
    def running(self) -> bool:
        return self.monitor is not None and self.monitor.running

    def start(self) -> LiveMonitor:
        """Start sampling (no-op if running)."""
        if self.running:
            return self
        now = time.perf_counter()
        self._t0 = self._t0 if self._t0 is not None else now
        self._offset, self._run = now - self._t0, self._run + 1
        self.monitor = Monitor(interval=self.interval, on_sample=self._on_sample).start()
        return self

    def stop(self) -> LiveMonitor:
        """Stop sampling, draw the last samples and re-sync the full figure state."""
        if self.monitor is not None:
            self.monitor.stop()
        self.push(final=True)
        return self

    def clear(self) -> None:
        """Forget all samples (not while running)."""
        with self._lock:
            self.records, self._run, self._t0 = [], -1, None
        self.push(final=True)

    def __enter__(self) -> LiveMonitor:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _on_sample(self, s: Sample) -> None:
        """Called in the Monitor's thread for every sample;
        pushes to the figure at most `max_hz`."""
        with self._lock:
            self.records.append({**s.to_dict(), "t": s.t + self._offset, "run": self._run})
            if len(self.records) > self.max_points:
                del self.records[: len(self.records) - self.max_points]
        if time.perf_counter() - self._last_push >= self.min_push_s:
            self.push()

    def push(self, final: bool = False) -> None:
        """Send the samples to the figure in one batched update: while running at most `live_points`
        (evenly thinned, so the cost per update stays flat),
        all of them and a resync when `final`."""
        with self._lock:
            self._last_push = time.perf_counter()
            records = list(self.records)
            with self.figure.batch_update():
                apply_samples(self.figure, records if final else _thin(records, self.live_points))
            if final:
                resync(self.figure)
            self.pushes += 1
        self.label.value = _summary(records, running=not final)


def _thin(records: list[dict], n: int) -> list[dict]:
    """At most about `n` records, evenly spaced, always keeping the newest."""
    if len(records) <= n:
        return records
    step = -(-len(records) // n)
    return records[-1::-step][::-1]


def _summary(records: list[dict], running: bool) -> str:
    if not records:
        return "<i>idle</i>"
    last, rss = records[-1], metric("rss_bytes")
    peak = max(r["rss_bytes"] for r in records)
    fastest = max(r["tokens_per_s"] for r in records)
    state = "sampling" if running else "stopped"
    now = f"now {last['tokens_per_s']:.1f}, " if running else ""
    return (
        f"<span class='llamalab-monitor-summary'>{state} · {len(records)} samples · {rss.label} "
        f"{rss.show(last['rss_bytes']):.0f} (peak {rss.show(peak):.0f}) · "
        f"{label('tokens_per_s')} {now}peak {fastest:.1f}</span>"
    )
