"""Playground: prompt a loaded model (or a served one) and watch the answer stream in,
with Stop and the numbers.

A background Task waits for the generation (which runs on the kit's torch thread, as every torch op
does, so the Playground decodes as fast as a cell) and updates the text as it streams: the torch
thread only decodes tokens. Stop ends the generation after the current token. While the answer
streams, and final when it is done, one line shows time to first token, prefill and decode tokens/s,
tokens and peak memory — the library's own measurement (a `LiveStats`, then the `Generation`),
labelled by the metrics vocabulary (`speed_line`) — and a small history table keeps each call.
"""

from __future__ import annotations

import ipywidgets as w

from llamalab import Generation, LiveStats, LoadedModel, Sampling, Task, metric

from ._common import (
    SPEED_INTERVAL,
    Background,
    ErrorBox,
    Throttle,
    background,
    guarded,
    html_table,
    launch,
    pre,
    speed_line,
)
from .monitor import LiveMonitor
from .picker import ModelPicker, loaded_from

COLUMNS = (
    "model",
    "scheme",
    "new_tokens",
    "ttft_s",
    "prefill_tokens_per_s",
    "decode_tokens_per_s",
    "peak_memory_bytes",
    "finish_reason",
)
FORMATS = {
    "ttft_s": "{:.0f}",
    "prefill_tokens_per_s": "{:.0f}",
    "decode_tokens_per_s": "{:.1f}",
    "peak_memory_bytes": "{:.0f}",
}  # after scale
HISTORY_COLUMNS = {"#": None, "prompt": None, **dict.fromkeys(COLUMNS)}
HISTORY_HEADERS = {k: metric(k).label for k in COLUMNS}
DEFAULTS = Sampling()


class Playground(Background, w.VBox):
    """Chat or plain prompt → streamed text, Stop, per-call metrics and history.

    `source` is a LoadedModel (local, or `llamalab.connect(...)` to a server), a ModelPicker (its
    current model is used at each Generate) or None (then call `set_model`)."""

    def __init__(
        self,
        source: LoadedModel | ModelPicker | None = None,
        monitor: bool = True,
        prompt: str = "Explain in two sentences what a large language model is.",
        max_new_tokens: int = DEFAULTS.max_new_tokens,
        history_size: int = 10,
    ):
        self.source, self.history_size = source, history_size
        self.errors = ErrorBox()
        self.last: Generation | None = None
        self.history: list[dict] = []
        self.text = ""
        self.mode = w.ToggleButtons(
            options=["chat", "plain"],
            value="chat",
            description="Mode",
            style={"button_width": "70px"},
        )
        self.system = w.Textarea(
            value="You are a concise, helpful assistant.",
            description="System",
            layout=w.Layout(width="98%", height="48px"),
        )
        self.prompt = w.Textarea(
            value=prompt, description="Prompt", layout=w.Layout(width="98%", height="72px")
        )
        wide = {"description_width": "90px"}
        self.max_new_tokens = w.IntSlider(
            value=max_new_tokens,
            min=1,
            max=2048,
            description="Max tokens",
            continuous_update=False,
            style=wide,
        )
        self.temperature = w.FloatSlider(
            value=DEFAULTS.temperature,
            min=0.0,
            max=2.0,
            step=0.05,
            description="Temperature",
            continuous_update=False,
            style=wide,
        )
        self.top_p = w.FloatSlider(
            value=DEFAULTS.top_p,
            min=0.05,
            max=1.0,
            step=0.05,
            description="Top-p",
            continuous_update=False,
            style=wide,
        )
        self.ignore_eos = w.Checkbox(
            value=False,
            description="ignore end of sequence (always run to max tokens)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="play")
        self.stop_button = w.Button(
            description="Stop", button_style="danger", icon="stop", disabled=True
        )
        self.state = w.HTML(value="<span class='llamalab-state'>idle</span>")
        self.output = w.HTML(value=pre(""))
        self.stats = w.HTML()
        self.history_html = w.HTML()
        self.live = (
            LiveMonitor(title="Memory and speed during generation", height=260) if monitor else None
        )
        self.mode.observe(
            lambda ch: setattr(self.system.layout, "display", None if ch.new == "chat" else "none"),
            "value",
        )
        self.generate_button.on_click(lambda _: self.generate())
        self.stop_button.on_click(guarded(self.errors)(lambda _: self.stop()))
        super().__init__(
            children=[
                self.mode,
                self.system,
                self.prompt,
                w.HBox([self.max_new_tokens, self.ignore_eos]),
                w.HBox([self.temperature, self.top_p]),
                w.HBox([self.generate_button, self.stop_button, self.state]),
                self.errors,
                self.output,
                self.stats,
                *([self.live] if self.live else []),
                self.history_html,
            ]
        )
        self.add_class("llamalab-playground")

    # ---------------------------------------------------------------- model

    def set_model(self, loaded: LoadedModel | ModelPicker | None) -> None:
        self.source = loaded

    @property
    def loaded(self) -> LoadedModel:
        return loaded_from(self.source, "Playground")

    # ---------------------------------------------------------------- actions

    def generate(self, wait: bool = False) -> None:
        """What the Generate button does: stream a generation in a background task. Problems show
        inline."""
        launch(self, wait)

    def _start(self) -> None:
        loaded, kwargs = self.loaded, self._kwargs()
        self.text = ""
        self._set_busy(True)
        self.task = background(
            self, lambda task: self._run(task, loaded, kwargs), self._finish, "generate"
        )

    def stop(self) -> None:
        """What the Stop button does: end the generation after the current token."""
        super().stop()
        self.state.value = "<span class='llamalab-state'>stopping…</span>"

    def _kwargs(self) -> dict:
        n = self.max_new_tokens.value
        chat = self.mode.value == "chat"
        sampling = Sampling(
            max_new_tokens=n,
            temperature=self.temperature.value,
            top_p=self.top_p.value,
            min_new_tokens=n if self.ignore_eos.value else 0,
        )
        return dict(
            prompt_or_messages=self.prompt.value,
            sampling=sampling,
            chat=chat,
            system=self.system.value.strip() or None if chat else None,
        )

    def _run(self, task: Task, loaded: LoadedModel, kwargs: dict) -> None:
        live = LiveStats()
        show = Throttle(lambda _: self._show(live), interval=SPEED_INTERVAL)

        def on_text(piece: str) -> None:
            self.text += piece
            show(None)

        prompt = kwargs.pop("prompt_or_messages")
        if self.live:
            self.live.start()
        try:
            gen = loaded.generate(
                prompt, on_text=on_text, stop_event=task.stop_event, live=live, **kwargs
            )
        finally:
            if self.live:
                self.live.stop()
            show.flush()
        self.last = gen
        self.output.value = pre(gen.text)
        self._record(gen, prompt)

    def _show(self, live: LiveStats) -> None:
        """The text so far and the live speed line (throttled by the caller)."""
        self.output.value = pre(self.text)
        self.stats.value = speed_line(live)

    def _record(self, gen: Generation, prompt: str) -> None:
        finish, kinds = f"finish: {gen.finish_reason}", _kinds_html(gen)
        self.stats.value = speed_line(gen, f"{kinds} · {finish}" if kinds else finish)
        shown = {
            k: FORMATS[k].format(metric(k).show(v)) if k in FORMATS and v is not None else v
            for k, v in gen.to_dict().items()
        }
        row = {
            **shown,
            "#": len(self.history) + 1,
            "prompt": prompt[:40] + ("…" if len(prompt) > 40 else ""),
        }
        self.history.append(row)
        self.history_html.value = html_table(
            self.history[-self.history_size :][::-1], HISTORY_COLUMNS, HISTORY_HEADERS
        )

    def _finish(self) -> None:
        self._set_busy(False)
        reason = (
            self.last.finish_reason
            if self.last is not None and self.errors.error is None
            else "idle"
        )
        self.state.value = f"<span class='llamalab-state'>{reason}</span>"

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.disabled = busy
        self.stop_button.disabled = not busy
        if busy:
            self.last, self.output.value = None, pre("")
            self.state.value = "<span class='llamalab-state'>generating…</span>"
            self.stats.value = ""


def _kinds_html(g: Generation) -> str:
    """The peak by kind, where it was measured: anonymous, file-backed, the container's count (the
    labels and hover help are the metrics vocabulary's)."""
    keys = ("peak_anon_bytes", "peak_file_bytes", "peak_container_bytes")
    shown = [
        f"<span title='{metric(k).help}'>{metric(k).label.replace(' (MB)', '')} "
        f"{getattr(g, k) / 1e6:.0f} MB</span>"
        for k in keys
        if getattr(g, k, None) is not None
    ]
    return f"[{', '.join(shown)}]" if shown else ""
