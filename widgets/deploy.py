"""DeploymentBuilder: target, model, scheme, GPU, context → the artefacts to copy (from
`llamalab.deployment_plan`), and "serve locally and load-test" with a live plot. Wiring only: the
sizing, the server and the load test are the library's;
the load test runs in a background Task (Stop works).
"""

from __future__ import annotations

import html

import ipywidgets as w
import plotly.graph_objects as go

import llamalab
from llamalab import LoadTestSettings, ServeSettings, Task, deployment_plan, providers

from ._common import Background, ErrorBox, Throttle, background, guarded, launch, pre

TARGETS = ("vLLM", "Kubernetes", "Ollama", "llama.cpp", "cloud")
PROMPTS = [
    "What is the capital of France?",
    "Name three colours.",
    "Write one sentence about the sea.",
]


class DeploymentBuilder(Background, w.VBox):
    """Every change rewrites the artefacts at once; `self.plan` is the DeploymentPlan behind them,
    `self.result` the last load test's LoadTestResult. The local server and load test take `serve`
    (ServeSettings) and `load_test` (LoadTestSettings); the defaults keep a 2-core machine quick.
    `stop()` ends the load test after the requests in flight; the server then stops."""

    def __init__(
        self,
        model: str = "llama-3.1-70b",
        scheme: str = "bf16",
        gpu: str = "h100-80gb",
        context: int = 8192,
        target: str = "vLLM",
        local_model: str = "default",
        serve: ServeSettings | None = None,
        load_test: LoadTestSettings | None = None,
    ):
        self.errors = ErrorBox()
        self.plan = self.result = None
        self.local_model = local_model
        self.load_test_settings = load_test or LoadTestSettings(requests=8, max_new_tokens=24)
        self.serve_settings = serve or ServeSettings(
            context=512, threads=1, parallel=max(self.load_test_settings.concurrency)
        )
        self.target = w.ToggleButtons(options=TARGETS, value=target, description="Target")
        self.model = w.Dropdown(
            options=[(r.display, r.name) for r in llamalab.models().itertuples()],
            value=model,
            description="Model",
        )
        self.scheme = w.Dropdown(
            options=llamalab.catalog.scheme_names(), value=scheme, description="Scheme"
        )
        self.gpu = w.Dropdown(
            options=[(r.display, r.name) for r in llamalab.gpus().itertuples()],
            value=gpu,
            description="GPU",
        )
        self.context = w.BoundedIntText(
            value=context, min=256, max=1_048_576, step=1024, description="Context"
        )
        self.summary = w.HTML()
        self.artefacts = w.HTML()
        self.serve_button = w.Button(
            description="Serve locally and load-test", icon="play", layout=w.Layout(width="260px")
        )
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.status = w.HTML()
        self.figure = go.FigureWidget(
            go.Figure(
                data=[
                    go.Scatter(x=[], y=[], mode="markers", name="TTFT (ms)"),
                    go.Scatter(
                        x=[], y=[], mode="lines+markers", name="output tokens/s", yaxis="y2"
                    ),
                ],
                layout=dict(
                    height=300,
                    xaxis=dict(title="concurrency", type="log"),
                    yaxis=dict(title="TTFT (ms)"),
                    yaxis2=dict(title="output tokens/s", overlaying="y", side="right"),
                ),
            )
        )
        self._records: list[dict] = []
        self._levels: list[dict] = []
        self._draw = Throttle(lambda _: self._redraw(), interval=0.25)  # ≤ 4 Hz
        rewrite = guarded(self.errors)(self.rewrite)
        for c in (self.target, self.model, self.scheme, self.gpu, self.context):
            c.observe(rewrite, "value")
        self.serve_button.on_click(lambda _: self.serve_and_test())
        self.stop_button.on_click(lambda _: self.stop())
        super().__init__(
            children=[
                self.target,
                w.HBox([self.model, self.scheme]),
                w.HBox([self.gpu, self.context]),
                self.errors,
                self.summary,
                self.artefacts,
                w.HBox([self.serve_button, self.stop_button]),
                self.status,
                self.figure,
            ]
        )
        self.add_class("llamalab-deploy")
        rewrite()

    # ---- artefacts -------------------------------------------------------------------------------
    def rewrite(self, *_) -> None:
        self.errors.clear()
        self.plan = deployment_plan(
            self.model.value, self.scheme.value, self.gpu.value, context=self.context.value
        )
        p = self.plan
        self.summary.value = (
            f"<b>TP={p.tensor_parallel} × PP={p.pipeline_parallel} = {p.gpus} GPU(s) on "
            f"{p.nodes} node(s)</b> · engine {p.engine}<ul>"
            + "".join(f"<li>{html.escape(r)}</li>" for r in p.reasons)
            + "</ul>"
        )
        self.artefacts.value = "".join(pre(text) for text in self.texts())

    def texts(self) -> list[str]:
        """The artefacts for the chosen target, as the text to copy."""
        p, t = self.plan, self.target.value
        if t == "vLLM":
            if not p.vllm_command:
                return [
                    f"# {p.scheme} is a GGUF scheme: llama.cpp serves it",
                    p.command,
                    p.docker_run,
                ]
            return [p.vllm_command, p.docker_run]
        if t == "Kubernetes":
            why = next((r for r in p.reasons if r.startswith("No Kubernetes")), "")
            return [p.kubernetes_yaml() or f"# {why}"]
        if t == "Ollama":
            return [p.ollama_modelfile, "\n".join(p.ollama_commands)]
        if t == "llama.cpp":
            scheme = p.scheme if llamalab.scheme(p.scheme).is_gguf else "q4_k_m"
            here = (
                f'llamalab.serve("{p.model}", scheme="{scheme}")'
                "   # llama.cpp's server on 127.0.0.1, with a key"
            )
            return [here, p.command, p.docker_run] if p.engine == "llama.cpp" else [here]
        return [
            "\n".join(
                f"{x.display}: llamalab.connect({x.base_url!r}, <model id>, "
                f"api_key_env={x.api_key_env!r})   # e.g. {x.models}"
                for x in providers().itertuples()
            )
        ]

    # ---- serve and load-test ---------------------------------------------------------------------
    def serve_and_test(self, wait: bool = False) -> None:
        launch(self, wait)

    def _start(self) -> None:
        self._records.clear()
        self._levels.clear()
        self.serve_button.disabled, self.stop_button.disabled = True, False
        self.task = background(self, self._run, self._finish, "deploy")

    def _run(self, task: Task) -> None:
        s = self.serve_settings
        self.status.value = f"starting llama.cpp's server for {self.local_model} ({s.scheme})…"
        with llamalab.serve(self.local_model, s) as server:
            self.status.value = f"serving on {server.url} (pid {server.pid}); load test running…"
            self.result = llamalab.load_test(
                server,
                PROMPTS,
                self.load_test_settings,
                on_event=self._on_event,
                stop_event=task.stop_event,
            )

    def _on_event(self, e: dict) -> None:
        (self._records if e["kind"] == "request" else self._levels).append(e)
        self._draw(None)

    def _redraw(self) -> None:
        with self.figure.batch_update():
            self.figure.data[0].x = [r["concurrency"] for r in self._records]
            self.figure.data[0].y = [r["ttft_s"] * 1e3 for r in self._records]
            self.figure.data[1].x = [r["concurrency"] for r in self._levels]
            self.figure.data[1].y = [r["output_throughput"] for r in self._levels]

    def _finish(self) -> None:
        self._redraw()  # full state at the end, whatever the throttle held back
        self.serve_button.disabled, self.stop_button.disabled = False, True
        if self.result is not None and not self.errors.message:
            sm = self.result.summary
            self.status.value = (
                f"done: {int(sm['completed'].sum())} requests, error rate "
                f"{sm['errors'].sum() / max(sm['requests'].sum(), 1):.0%}; server stopped."
            )
