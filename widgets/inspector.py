"""Token inspector: one answer token by token, each coloured by how sure the model was of it, its
alternatives and the entropy on hover; against a second model (another scheme, a server), the
per-token KL under each token and the first token where the greedy choices part, framed.

`llamalab.inspect_tokens` does the work (in a background Task, so the kernel stays free);
`llamalab.plots.tokens_html` draws it.
"""

from __future__ import annotations

import html

import ipywidgets as w

from llamalab import LiveStats, LoadedModel, TokenView, inspect_tokens
from llamalab.plots import tokens_html

from ._common import Background, ErrorBox, background, launch, speed_line
from .picker import ModelPicker, loaded_from

NONE = "(none)"


class TokenInspector(Background, w.VBox):
    """Prompt (and optionally an answer to score) → the answer's tokens coloured by probability.

    `source`: a LoadedModel or a ModelPicker (its current model). `others`: {label: LoadedModel}
    offered in the "Against" menu (another scheme, an adapter, `server.connect()`). `stop()` ends
    the local greedy answer and inspects the tokens so far."""

    def __init__(
        self,
        source: LoadedModel | ModelPicker | None = None,
        others: dict[str, LoadedModel] | None = None,
        prompt: str = "What is the capital of France?",
        max_new_tokens: int = 24,
        alternatives: int = 5,
    ):
        self.source, self.others = source, dict(others or {})
        self.errors = ErrorBox()
        self.last: TokenView | None = None
        self.prompt = w.Textarea(
            value=prompt, description="Prompt", layout=w.Layout(width="98%", height="56px")
        )
        self.answer = w.Textarea(
            value="",
            description="Answer",
            placeholder="empty: the model's own greedy answer",
            layout=w.Layout(width="98%", height="40px"),
        )
        wide = {"description_width": "90px"}
        self.max_new_tokens = w.IntSlider(
            value=max_new_tokens, min=1, max=256, description="Max tokens", style=wide
        )
        self.alternatives = w.IntSlider(
            value=alternatives, min=1, max=20, description="Alternatives", style=wide
        )
        self.against = w.Dropdown(
            options=[NONE, *self.others], value=NONE, description="Against", style=wide
        )
        self.inspect_button = w.Button(description="Inspect", button_style="primary", icon="search")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.state = w.HTML(value="<span class='llamalab-state'>idle</span>")
        self.output = w.HTML()
        self.verdict = w.HTML()
        self.inspect_button.on_click(lambda _: self.inspect())
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__(
            children=[
                self.prompt,
                self.answer,
                w.HBox([self.max_new_tokens, self.alternatives]),
                w.HBox([self.against, self.inspect_button, self.stop_button, self.state]),
                self.errors,
                self.verdict,
                self.output,
            ]
        )
        self.add_class("llamalab-inspector")

    @property
    def loaded(self) -> LoadedModel:
        return loaded_from(self.source, "TokenInspector")

    def inspect(self, wait: bool = False) -> None:
        """What the Inspect button does: inspect the answer in a background task; problems show
        inline."""
        launch(self, wait)

    def _start(self) -> None:
        kwargs = dict(
            model=self.loaded,
            prompt=self.prompt.value,
            answer=self.answer.value.strip() or None,
            against=self.others.get(self.against.value),
            max_new_tokens=self.max_new_tokens.value,
            alternatives=self.alternatives.value,
            live=LiveStats(),
        )
        self.inspect_button.disabled, self.stop_button.disabled = True, False
        self.last, self.output.value, self.verdict.value = None, "", ""
        self.state.value = "<span class='llamalab-state'>inspecting…</span>"
        self.task = background(self, lambda task: self._run(kwargs, task), self._finish, "inspect")

    def _run(self, kwargs: dict, task) -> None:
        view = inspect_tokens(**kwargs, stop_event=task.stop_event)
        self.last = view
        live = kwargs["live"]  # the local answer's generation; a served answer is not timed here
        speed = speed_line(live) if live.done else ""
        stopped = " (stopped: the answer so far)" if task.stopping else ""
        label = html.escape(view.label + stopped)
        self.verdict.value = f"{speed}<div class='llamalab-verdict'>{label}</div>"
        self.output.value = tokens_html(view.to_records(), title=view.method)

    def _finish(self) -> None:
        self.inspect_button.disabled, self.stop_button.disabled = False, True
        done = self.last is not None and self.errors.error is None
        self.state.value = f"<span class='llamalab-state'>{'done' if done else 'idle'}</span>"
