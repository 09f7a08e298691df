"""Playground: prompt a loaded model and watch the answer stream in, with Stop and the numbers.

A worker thread waits for the generation (which runs on the runtime's torch thread, as every torch
op of the kit does, so the Playground decodes as fast as a cell) and updates the text as it streams:
the torch thread only decodes tokens. Stop is handled while tokens flow (it ends the generation after
the current token). After each call it shows time to first token, decode tokens/s, tokens and
peak memory — all measured by the library's `Generation` — and keeps a small history table.
"""
from __future__ import annotations

import threading

import ipywidgets as w

from llamalab import Generation, InvalidSetting, LoadedModel

from ._common import ErrorBox, Throttle, Worker, guarded, html_table, launch, pre
from .monitor import LiveMonitor
from .picker import ModelPicker

HISTORY_COLUMNS = {"#": None, "prompt": None, "model": None, "scheme": None, "new_tokens": None,
                   "ttft_s": "{:.3f}".format, "decode_tokens_per_s": "{:.1f}".format,
                   "peak_memory_mb": "{:.0f}".format, "finish_reason": None}
HISTORY_HEADERS = {"new_tokens": "tokens", "ttft_s": "TTFT s", "decode_tokens_per_s": "decode tok/s", "peak_memory_mb": "peak MB",
                   "finish_reason": "finish"}


class Playground(w.VBox):
    """Chat or plain prompt → streamed text, Stop, per-call metrics and history.

    `source` is a LoadedModel, a ModelPicker (its current model is used at each Generate) or None
    (then call `set_model`)."""

    def __init__(self, source: LoadedModel | ModelPicker | None = None, monitor: bool = True,
                 prompt: str = "Explain in two sentences what a large language model is.",
                 max_new_tokens: int = 128, history_size: int = 10):
        self.source, self.history_size = source, history_size
        self.errors = ErrorBox()
        self.worker = Worker(self.errors, "llamalab-generate")
        self.stop_event = threading.Event()
        self.last: Generation | None = None
        self.history: list[dict] = []
        self.text = ""
        self.mode = w.ToggleButtons(options=["chat", "plain"], value="chat", description="Mode",
                                    style={"button_width": "70px"})
        self.system = w.Textarea(value="You are a concise, helpful assistant.", description="System",
                                 layout=w.Layout(width="98%", height="48px"))
        self.prompt = w.Textarea(value=prompt, description="Prompt", layout=w.Layout(width="98%", height="72px"))
        wide = {"description_width": "90px"}
        self.max_new_tokens = w.IntSlider(value=max_new_tokens, min=1, max=2048, description="Max tokens",
                                          continuous_update=False, style=wide)
        self.temperature = w.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.05, description="Temperature",
                                         continuous_update=False, style=wide)
        self.top_p = w.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05, description="Top-p",
                                   continuous_update=False, style=wide)
        self.ignore_eos = w.Checkbox(value=False, description="ignore end of sequence (always run to max tokens)",
                                     indent=False, layout=w.Layout(width="auto"))
        self.generate_button = w.Button(description="Generate", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.state = w.HTML(value="<span class='llamalab-state'>idle</span>")
        self.output = w.HTML(value=pre(""))
        self.stats = w.HTML()
        self.history_html = w.HTML()
        self.live = LiveMonitor(title="Memory and speed during generation", height=260) if monitor else None
        self.mode.observe(lambda ch: setattr(self.system.layout, "display", None if ch.new == "chat" else "none"),
                          "value")
        self.generate_button.on_click(lambda _: self.generate())
        self.stop_button.on_click(guarded(self.errors)(lambda _: self.stop()))
        super().__init__(children=[
            self.mode, self.system, self.prompt, w.HBox([self.max_new_tokens, self.ignore_eos]),
            w.HBox([self.temperature, self.top_p]), w.HBox([self.generate_button, self.stop_button, self.state]),
            self.errors, self.output, self.stats, *([self.live] if self.live else []), self.history_html])
        self.add_class("llamalab-playground")

    # ---------------------------------------------------------------- model

    def set_model(self, loaded: LoadedModel | ModelPicker | None) -> None:
        self.source = loaded

    @property
    def loaded(self) -> LoadedModel:
        m = self.source.loaded if isinstance(self.source, ModelPicker) else self.source
        if m is None or not m.is_loaded:
            raise InvalidSetting("No model is loaded.", "Press Load in the model picker first, or pass a "
                                 "LoadedModel: Playground(llamalab.load()).")
        return m

    @property
    def busy(self) -> bool:
        return self.worker.busy

    # ---------------------------------------------------------------- actions

    def generate(self, wait: bool = False) -> None:
        """What the Generate button does: stream a generation in a worker thread. Problems show inline."""
        launch(self, wait)

    def _start(self) -> None:
        loaded, kwargs = self.loaded, self._kwargs()
        self.stop_event.clear()
        self.text = ""
        self._set_busy(True)
        self.worker.start(lambda: self._run(loaded, kwargs), done=self._finish)

    def stop(self) -> None:
        """What the Stop button does: end the generation after the current token."""
        self.stop_event.set()
        self.state.value = "<span class='llamalab-state'>stopping…</span>"

    def wait(self, timeout: float | None = None) -> bool:
        return self.worker.wait(timeout)

    def _kwargs(self) -> dict:
        n = self.max_new_tokens.value
        return dict(prompt_or_messages=self.prompt.value, max_new_tokens=n, temperature=self.temperature.value,
                    top_p=self.top_p.value, chat=self.mode.value == "chat",
                    system=self.system.value.strip() or None if self.mode.value == "chat" else None,
                    min_new_tokens=n if self.ignore_eos.value else 0, stop_event=self.stop_event)

    def _run(self, loaded: LoadedModel, kwargs: dict) -> None:
        show = Throttle(lambda text: setattr(self.output, "value", pre(text)), interval=0.05)

        def on_text(piece: str) -> None:
            self.text += piece
            show(self.text)

        prompt = kwargs.pop("prompt_or_messages")
        if self.live:
            self.live.start()
        try:
            gen = loaded.generate(prompt, on_text=on_text, **kwargs)
        finally:
            if self.live:
                self.live.stop()
            show.flush()
        self.last = gen
        self.output.value = pre(gen.text)
        self._record(gen, prompt)

    def _record(self, gen: Generation, prompt: str) -> None:
        self.stats.value = _stats_html(gen)
        row = {**gen.to_dict(), "#": len(self.history) + 1, "prompt": prompt[:40] + ("…" if len(prompt) > 40 else ""),
               "peak_memory_mb": None if gen.peak_memory_bytes is None else gen.peak_memory_bytes / 1e6}
        self.history.append(row)
        self.history_html.value = html_table(self.history[-self.history_size:][::-1], HISTORY_COLUMNS,
                                              HISTORY_HEADERS)

    def _finish(self) -> None:
        self._set_busy(False)
        reason = self.last.finish_reason if self.last is not None and self.errors.error is None else "idle"
        self.state.value = f"<span class='llamalab-state'>{reason}</span>"

    def _set_busy(self, busy: bool) -> None:
        self.generate_button.disabled = busy
        self.stop_button.disabled = not busy
        if busy:
            self.last, self.output.value = None, pre("")
            self.state.value = "<span class='llamalab-state'>generating…</span>"
            self.stats.value = ""


def _stats_html(g: Generation) -> str:
    peak = "—" if g.peak_memory_bytes is None else f"{g.peak_memory_bytes / 1e6:.0f} MB"
    return (f"<div class='llamalab-stats'>TTFT <b>{g.ttft_s * 1e3:.0f} ms</b> · decode "
            f"<b>{g.decode_tokens_per_s:.1f} tokens/s</b> · <b>{g.new_tokens}</b> tokens "
            f"(prompt {g.prompt_tokens}) · peak memory <b>{peak}</b> "
            f"<span title='{g.peak_memory_kind}'>({g.peak_memory_kind})</span> · finish: {g.finish_reason}</div>")
