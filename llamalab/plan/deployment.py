"""Deployment artefacts sized by the calculator: how many GPUs and nodes, and the `vllm serve` line,
`docker run`, Kubernetes manifests and an Ollama Modelfile that follow. Pure text over
`llamalab.estimate` — no torch, nothing runs.

Sizing: `Estimate.split` (plan/parallel.py), the one answer to "how many GPUs", over vLLM's
estimate (chunked prefill, CUDA graphs) within its `--gpu-memory-utilization`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from .. import catalog
from ..catalog import ModelCard
from ..core import validate
from ..core.errors import InvalidSetting
from ..core.units import both
from . import kubernetes, ollama
from .commands import (
    LLAMA_SERVER_IMAGE,
    engine_for,
    llama_server_args,
    vllm_args,
    vllm_gguf_args,
    weights,
)
from .estimator import KV_DTYPES, estimate, kv_cache_bytes
from .kubernetes import IMAGE, PORT, Manifest, validate_manifests
from .parallel import PlanDoesNotFit, Split

MAX_SLOTS = 8  # llama-server's parallel slots a plan opens at most (each holds one sequence)


@dataclass(frozen=True)
class DeploymentPlan:
    """GPUs, parallelism and artefacts for one model × scheme × context × GPU type;
    `reasons` say why."""

    model: str
    scheme: str
    gpu: str
    context: int
    replicas: int
    tensor_parallel: int
    pipeline_parallel: int
    gpu_memory_utilization: float
    per_gpu_bytes: int
    estimate_bytes: int
    kv_cache_bytes: int  # KV cache room on all GPUs of a replica, as vLLM allocates it
    max_concurrency: float  # sequences of `context` tokens the KV cache holds at once
    max_concurrency_4k: float  # the same at a typical 4096-token sequence
    engine: str  # "vllm", or "llama.cpp" for a GGUF scheme
    reasons: tuple[str, ...]
    command: str  # the server's command line: `vllm serve …` or `llama-server …`
    vllm_command: str  # the same for vLLM plans; "" for llama.cpp's
    docker_run: str
    kubernetes: tuple[Manifest, ...] = field(repr=False)
    ollama_modelfile: str = field(repr=False)
    ollama_commands: tuple[str, ...] = field(repr=False)

    @property
    def gpus(self) -> int:
        """GPUs per replica."""
        return self.tensor_parallel * self.pipeline_parallel

    @property
    def nodes(self) -> int:
        """Nodes per replica (one per pipeline stage)."""
        return self.pipeline_parallel

    def kubernetes_yaml(self) -> str:
        return "---\n".join(m.yaml() for m in self.kubernetes)

    def validate(self, version: str | None = None) -> list[dict]:
        """Validate every manifest offline (see `validate_manifests`)."""
        return validate_manifests(self.kubernetes, version)

    def __str__(self) -> str:
        head = (
            f"{self.model} · {self.scheme} · context {self.context} on {self.gpu}: "
            f"TP={self.tensor_parallel} × PP={self.pipeline_parallel} = {self.gpus} GPU(s) on "
            f"{self.nodes} node(s), engine {self.engine}"
        )
        return "\n".join([head, *(f"  - {r}" for r in self.reasons), "", self.command])


def deployment_plan(
    model,
    scheme: str = "bf16",
    gpu: str = "h100-80gb",
    context: int = 8192,
    replicas: int = 1,
    gpus_per_node: int = 8,
    max_nodes: int = 8,
    kv_cache_dtype: str = "auto",
    chat_template: str | None = None,
) -> DeploymentPlan:
    """Size and write the deployment of `model` under `scheme` on GPUs of type `gpu`
    (a catalog name). `chat_template`: the model's Jinja chat template, for its Ollama Modelfile
    (default: the catalog's copy, `ollama.known_template`; else its family's format)."""
    c, s, g = catalog.card(model), catalog.scheme(scheme, model), catalog.gpu(gpu)
    context = validate.integer("context", context, lo=1, hi=c.context or None)
    replicas = validate.integer("replicas", replicas, lo=1, hi=1000)
    gpus_per_node = validate.integer("gpus_per_node", gpus_per_node, lo=1, hi=64)
    validate.choice("kv_cache_dtype", kv_cache_dtype, ("auto", "fp8"))
    kv = "fp8" if kv_cache_dtype == "fp8" else None
    engine = engine_for(s)
    e = estimate(c, s, context, device="cuda", kv_dtype=kv, engine=engine)
    sp = _sizing(c, e, g, gpus_per_node, max_nodes, s.name)
    tp, pp, util = sp.tensor_parallel, sp.pipeline_parallel, sp.utilization
    kv_room, conc, conc_4k = kv_capacity(c, e, sp, g, context)
    if engine == "vllm":
        args, why_args = vllm_args(c, s, g, tp, pp, context, util, kv_cache_dtype)
        command, docker = "vllm serve " + shlex.join(args), docker_run(args, tp)
    else:
        slots = max(1, min(int(conc), MAX_SLOTS))
        args = llama_server_args(c, s, tp * pp, context, slots)
        command, docker = "llama-server " + shlex.join(args), docker_run_llama_server(args)
        why_args = [
            weights(c, s).how,
            f"llama-server: {slots} parallel slot(s) of {context} tokens (--parallel {slots}, "
            f"--ctx-size {slots * context}: llama.cpp splits its context between slots); the "
            f"memory left would hold about {conc:.1f}.",
        ]
    reasons = [
        f"Estimate {e.peak_bytes / 1e9:.1f} GB at context {context} (llamalab.estimate, "
        f"engine={engine!r}: weights {e.breakdown['weights'] / 1e9:.1f} GB, KV cache "
        f"{e.breakdown['kv_cache'] / 1e9:.1f} GB, chunked-prefill activations "
        f"{e.breakdown['activations'] / 1e9:.1f} GB); one {g.name} has "
        f"{g.memory_mib:.0f} MiB = {both(g.memory_bytes)} (nvidia-smi).",
        *sp.reasons,
        f"KV cache room {kv_room / 1e9:.1f} GB: about {conc:.1f} concurrent sequences of "
        f"{context} tokens, {conc_4k:.1f} of 4096"
        + (" (vLLM prints this as 'Maximum concurrency')." if engine == "vllm" else "."),
        *why_args,
        _why_engine(s, tp * pp, pp),
    ]
    if s.is_gguf:
        reasons.append(_vllm_gguf(c, s, tp * pp, context))
    gguf_scheme = s.name if s.is_gguf else "q4_k_m"
    gguf_name = f"{c.name}-{gguf_scheme}.gguf"
    if not s.is_gguf:
        reasons.append(
            f"Ollama runs GGUF files only: its Modelfile uses {gguf_scheme} "
            f"(llamalab.export_gguf(..., outtype={gguf_scheme!r}))."
        )
    num_ctx = min(context, ollama.laptop_num_ctx(c, gguf_scheme) or ollama.DEFAULT_NUM_CTX)
    template = chat_template or ollama.known_template(c.name)
    modelfile = _modelfile(f"./{gguf_name}", template, c, num_ctx, reasons)
    name = c.name.replace(".", "-")
    manifests = _manifests(engine, name, args, tp, pp, replicas, e, g, reasons)
    return DeploymentPlan(
        model=c.name,
        scheme=s.name,
        gpu=g.name,
        context=context,
        replicas=replicas,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        gpu_memory_utilization=util,
        per_gpu_bytes=sp.per_gpu_bytes,
        estimate_bytes=e.peak_bytes,
        kv_cache_bytes=kv_room,
        max_concurrency=conc,
        max_concurrency_4k=conc_4k,
        engine=engine,
        reasons=tuple(reasons),
        command=command,
        vllm_command=command if engine == "vllm" else "",
        docker_run=docker,
        kubernetes=manifests,
        ollama_modelfile=modelfile,
        ollama_commands=tuple(ollama.commands(name)),
    )


def _sizing(c, e, g, gpus_per_node: int, max_nodes: int, scheme: str) -> Split:
    """The one GPU count (plan/parallel.py), or PlanDoesNotFit naming a scheme that would fit."""
    try:
        return e.split(g, gpus_per_node, max_nodes)
    except PlanDoesNotFit as err:
        fits = next(
            (s for s in _by_fidelity(c) if _splits(c, s, e, g, gpus_per_node, max_nodes)), None
        )
        raise PlanDoesNotFit(
            f"{c.name} under {scheme} needs {e.peak_bytes / 1e9:.0f} GB: more than {max_nodes} "
            f"nodes of {gpus_per_node} × {g.name}.",
            (f"Scheme {fits!r} fits on {max_nodes} nodes; " if fits else "")
            + "use a bigger GPU type, a lower context, or raise max_nodes.",
        ) from err


def _by_fidelity(c) -> list[str]:
    return [
        s.name for s in sorted(map(catalog.scheme, catalog.scheme_names()), key=lambda s: s.rank)
    ]


def _splits(c, scheme: str, e, g, gpus_per_node: int, max_nodes: int) -> bool:
    """Whether `scheme` fits `max_nodes` nodes of `g` at the estimate's context and KV dtype."""
    engine = engine_for(catalog.scheme(scheme, c))
    other = estimate(c, scheme, e.context, device="cuda", kv_dtype=e.kv_dtype, engine=engine)
    try:
        return bool(other.split(g, gpus_per_node, max_nodes))
    except PlanDoesNotFit:
        return False


def kv_capacity(c, e, sp: Split, g, context: int) -> tuple[int, float, float]:
    """What vLLM prints at start-up: KV cache bytes left on all GPUs of a replica once weights,
    activations and overheads are in, and the concurrent sequences it holds at `context` and at 4k
    ("Maximum concurrency for N tokens per request")."""
    free = sp.gpus * (g.memory_bytes * sp.utilization - e.breakdown["overhead"])
    left = int(free - (e.peak_bytes - e.breakdown["overhead"] - e.breakdown["kv_cache"]))
    per_token = kv_cache_bytes(c, 1, 1, KV_DTYPES[e.kv_dtype])
    return left, left / per_token / context, left / per_token / 4096


def _modelfile(path: str, template, c: ModelCard, context: int, reasons: list[str]) -> str:
    """The Ollama Modelfile from the model's chat `template` (its default system prompt becomes
    SYSTEM) or its family's format, or '' with the reason where neither is known."""
    try:
        return ollama.modelfile(path, template, family=c.family, num_ctx=context, model=c.name)
    except InvalidSetting as err:
        reasons.append(f"No Ollama Modelfile: {err.message} {err.fix}")
        return ""


def _manifests(engine, name, args, tp, pp, replicas, e, g, reasons) -> tuple[Manifest, ...]:
    if engine == "vllm":
        reasons.append(
            "Create the secrets the manifests refer to first (values from your shell, never a "
            "file): " + " ; ".join(kubernetes.secret_commands(name))
        )
        reasons.append(str(kubernetes.startup_budget(int(e.breakdown["weights"]), pp)))
        reasons.append(str(kubernetes.Shutdown()))
        return tuple(kubernetes.manifests(name, args, tp, pp, replicas, e, gpu=g.name))
    reasons.append(
        "No Kubernetes manifests: they are written for vLLM's image; run llama-server with the "
        "docker line, or plan a GPTQ/AWQ scheme for a cluster."
    )
    return ()


def _vllm_gguf(c: ModelCard, s, gpus: int, context: int) -> str:
    """vLLM's GGUF path, said as what it is: experimental in 0.11, a plugin later, and supported
    per architecture (no list to check against)."""
    args = vllm_gguf_args(c, s, gpus, context)
    return (
        f"vLLM can also load this file: `vllm serve {shlex.join(args)}`. Its docs call GGUF "
        "support highly experimental and under-optimized (0.11, single-file GGUFs only; from 0.34 "
        "it needs the vllm-gguf-plugin package) and keep no list of architectures: its CI tests "
        "Qwen2.5, Phi-3.5, GPT-2, StableLM and a Llama 2 model, and has Llama 3.2 1B disabled as "
        "broken (vllm#19458). The GPUs are sized for llama-server; vLLM takes 90 % of each GPU "
        "up front. Try it on a staging GPU before relying on it; llama-server is the engine this "
        "file was made for."
    )


def _why_engine(s, gpus: int, nodes: int) -> str:
    if s.is_gguf:
        return (
            "A GGUF scheme: llama.cpp's llama-server serves the file natively"
            + (f", its layers split over {gpus} GPUs" if gpus > 1 else "")
            + " (Ollama too, with the Modelfile)."
        )
    if nodes > 1:
        return (
            f"vLLM across {nodes} nodes: Ray joins them (vLLM's multi-node setup); on Kubernetes a "
            "LeaderWorkerSet starts one leader and the workers as a group."
        )
    if gpus > 1:
        return (
            f"vLLM with tensor parallelism over {gpus} GPUs of one node (continuous "
            "batching, paged KV cache)."
        )
    return "vLLM on one GPU: continuous batching and a paged KV cache for many concurrent users."


def docker_run(args: list[str], tp: int) -> str:
    """vLLM's OpenAI server image on this host only (127.0.0.1); the key and Hub token come from
    your shell's environment, never the line, and the shell refuses to start it without a key."""
    shm = " --ipc=host" if tp > 1 else ""
    return (
        "docker run --gpus all -v ~/.cache/huggingface:/root/.cache/huggingface "
        '-v ./models:/models --env "HF_TOKEN=$HF_TOKEN" '
        '--env "VLLM_API_KEY=${VLLM_API_KEY:?set VLLM_API_KEY first}" '
        f"-p 127.0.0.1:{PORT}:{PORT}{shm} {IMAGE} --model " + shlex.join(args)
    )


def docker_run_llama_server(args: list[str]) -> str:
    """llama.cpp's CUDA server image on this host only; the key from your environment
    (llama-server reads LLAMA_API_KEY), refused when unset."""
    return (
        "docker run --gpus all -v ./models:/models:ro "
        '--env "LLAMA_API_KEY=${LLAMA_API_KEY:?set LLAMA_API_KEY first}" '
        f"-p 127.0.0.1:{PORT}:{PORT} {LLAMA_SERVER_IMAGE} " + shlex.join(args)
    )
