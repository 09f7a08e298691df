"""Deployment artefacts sized by the calculator: how many GPUs and nodes, and the `vllm serve` line,
`docker run`, Kubernetes manifests and an Ollama Modelfile that follow. Pure text over
`llamalab.estimate` — no torch, nothing runs.

Sizing rules (vLLM): tensor parallelism splits every layer across the GPUs of one node, and the
attention-head count must be divisible by it; pipeline parallelism splits the layers across nodes
when one node's GPUs are not enough. TP = the smallest valid GPU count (1, 2, 4, 8) whose memory
holds the estimate with `--gpu-memory-utilization` (0.90, vLLM's default; 0.95 when that is what
it takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .. import catalog
from ..core import validate
from ..core.errors import LlamalabError
from . import kubernetes, ollama
from .estimator import best_scheme, estimate
from .kubernetes import IMAGE, PORT, Manifest, validate_manifests

TP_SIZES = (1, 2, 4, 8)
UTILIZATION = (0.90, 0.95)


class PlanDoesNotFit(LlamalabError):
    """No GPU count up to `max_nodes` nodes holds this model under this scheme."""


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
    engine: str
    reasons: tuple[str, ...]
    vllm_command: str
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
        return "\n".join([head, *(f"  - {r}" for r in self.reasons), "", self.vllm_command])


def deployment_plan(
    model,
    scheme: str = "bf16",
    gpu: str = "h100-80gb",
    context: int = 8192,
    replicas: int = 1,
    gpus_per_node: int = 8,
    max_nodes: int = 8,
    kv_cache_dtype: str = "auto",
) -> DeploymentPlan:
    """Size and write the deployment of `model` under `scheme` on GPUs of type `gpu`
    (a catalog name)."""
    c, s, g = catalog.card(model), catalog.scheme(scheme, model), catalog.gpu(gpu)
    context = validate.integer("context", context, lo=1, hi=c.context or None)
    replicas = validate.integer("replicas", replicas, lo=1, hi=1000)
    gpus_per_node = validate.integer("gpus_per_node", gpus_per_node, lo=1, hi=64)
    validate.choice("kv_cache_dtype", kv_cache_dtype, ("auto", "fp8"))
    e = estimate(c, s, context, device="cuda", kv_dtype="fp8" if kv_cache_dtype == "fp8" else None)
    tp, pp, util, per_gpu, reasons = size(c, e, g, gpus_per_node, max_nodes, s.name)
    engine, why = _engine(s, tp * pp, pp)
    reasons.append(why)
    repo = serving_repo(c, s)
    args = vllm_args(repo, tp, pp, context, s, util, kv_cache_dtype)
    gguf_scheme = s.name if s.is_gguf else "q4_k_m"
    gguf_name = f"{c.name}-{gguf_scheme}.gguf"
    if not s.is_gguf:
        reasons.append(
            f"Ollama runs GGUF files only: its Modelfile uses {gguf_scheme} "
            f"(llamalab.export_gguf(..., outtype={gguf_scheme!r}))."
        )
    name = c.name.replace(".", "-")
    return DeploymentPlan(
        model=c.name,
        scheme=s.name,
        gpu=g.name,
        context=context,
        replicas=replicas,
        tensor_parallel=tp,
        pipeline_parallel=pp,
        gpu_memory_utilization=util,
        per_gpu_bytes=per_gpu,
        estimate_bytes=e.peak_bytes,
        engine=engine,
        reasons=tuple(reasons),
        vllm_command="vllm serve " + " ".join(args),
        docker_run=docker_run(args, tp),
        kubernetes=tuple(kubernetes.manifests(name, args, tp, pp, replicas, e)),
        ollama_modelfile=ollama.modelfile(f"./{gguf_name}", family=c.family, num_ctx=context),
        ollama_commands=tuple(ollama.commands(name)),
    )


def valid_tp(c, n: int) -> bool:
    """vLLM shards attention heads: heads divisible by TP; KV heads divisible by it,
    or replicated evenly."""
    return c.heads % n == 0 and (c.kv_heads % n == 0 or n % c.kv_heads == 0)


def size(c, e, g, gpus_per_node: int, max_nodes: int, scheme: str):
    """(TP, PP, utilization, bytes per GPU, reasons): the smallest valid TP on one node,
    else PP across nodes."""
    overhead = e.breakdown.get("overhead", 0)
    sharded = (
        e.peak_bytes - overhead
    )  # weights, KV cache, activations split; the CUDA context is per GPU

    def per_gpu(n: int) -> int:
        return math.ceil(sharded / n) + overhead

    reasons = [
        f"Estimate {e.peak_bytes / 1e9:.1f} GB at context {e.context} (llamalab.estimate; weights "
        f"{e.breakdown['weights'] / 1e9:.1f} GB, "
        f"KV cache {e.breakdown.get('kv_cache', 0) / 1e9:.1f} GB); one {g.name} has "
        f"{g.memory_bytes / 1e9:.0f} GB."
    ]
    sizes = [n for n in TP_SIZES if n <= gpus_per_node and valid_tp(c, n)]
    for n in sizes:
        for util in UTILIZATION:
            if per_gpu(n) <= g.memory_bytes * util:
                skipped = [
                    m for m in TP_SIZES if m < n and m <= gpus_per_node and not valid_tp(c, m)
                ]
                reasons.append(
                    f"TP={n}: the smallest GPU count whose memory holds it at "
                    f"--gpu-memory-utilization {util:.2f} ({per_gpu(n) / 1e9:.1f} GB per GPU)"
                    + (
                        f"; TP={skipped} skipped: {c.heads} attention heads are not divisible by it"
                        if skipped
                        else ""
                    )
                    + "."
                )
                if util > UTILIZATION[0]:
                    reasons.append(
                        f"At vLLM's default 0.90 it does not fit: raised to {util:.2f} (little "
                        "room left for the KV cache: few concurrent sequences)."
                    )
                return n, 1, util, per_gpu(n), reasons
    tp, util = max(sizes), UTILIZATION[0]
    pp = math.ceil(sharded / (g.memory_bytes * util - overhead) / tp)
    if pp > max_nodes or pp > c.layers:
        fits = best_scheme(c, g.memory_bytes * util * tp * max_nodes, e.context, device="cuda")
        raise PlanDoesNotFit(
            f"{c.name} under {scheme} needs {e.peak_bytes / 1e9:.0f} GB: more than {max_nodes} "
            f"nodes of {tp} × {g.name}.",
            (f"Scheme {fits!r} fits on {max_nodes} nodes; " if fits else "")
            + "use a bigger GPU type, a lower context, or raise max_nodes.",
        )
    reasons.append(
        f"One node of {tp} × {g.name} holds {tp * g.memory_bytes * util / 1e9:.0f} GB at "
        f"utilization {util:.2f}, less than needed: PP={pp} pipeline stages, one node each, "
        f"TP={tp} within each ({per_gpu(tp * pp) / 1e9:.1f} GB per GPU)."
    )
    return tp, pp, util, per_gpu(tp * pp), reasons


def _engine(s, gpus: int, nodes: int) -> tuple[str, str]:
    if nodes > 1:
        return "vllm", (
            f"vLLM across {nodes} nodes: Ray joins them (vLLM's multi-node setup); on Kubernetes a "
            "LeaderWorkerSet starts one leader and the workers as a group."
        )
    if s.is_gguf:
        return "llama.cpp", (
            "A GGUF scheme: llama.cpp's server or Ollama serve it natively; vLLM's GGUF "
            "support is experimental (the vLLM line is given for comparison)."
        )
    if gpus > 1:
        return (
            "vllm",
            f"vLLM with tensor parallelism over {gpus} GPUs of one node (continuous "
            "batching, paged KV cache).",
        )
    return (
        "vllm",
        "vLLM on one GPU: continuous batching and a paged KV cache for many concurrent users.",
    )


def serving_repo(c, s) -> str:
    """The Hub repo vLLM loads: the published AWQ/GPTQ checkpoint for those schemes,
    else the instruct model."""
    published = c.published(s.made_by)
    return published[0] if published else c.hub_id_instruct or c.hub_id


def vllm_args(repo, tp, pp, context, s, util, kv_cache_dtype) -> list[str]:
    args = [repo, "--tensor-parallel-size", str(tp)]
    if pp > 1:
        args += ["--pipeline-parallel-size", str(pp), "--distributed-executor-backend", "ray"]
    args += ["--max-model-len", str(context)]
    if s.vllm_quantization:
        args += ["--quantization", s.vllm_quantization]
    elif s.dtype:
        args += ["--dtype", s.dtype]
    args += [
        "--gpu-memory-utilization",
        f"{util:.2f}",
        "--kv-cache-dtype",
        kv_cache_dtype,
        "--port",
        str(PORT),
    ]
    return args


def docker_run(args: list[str], tp: int) -> str:
    """vLLM's OpenAI server image; the key and Hub token come from your shell's environment,
    never the line."""
    shm = " --ipc=host" if tp > 1 else ""
    return (
        "docker run --gpus all -v ~/.cache/huggingface:/root/.cache/huggingface --env "
        f'"HF_TOKEN=$HF_TOKEN" --env "VLLM_API_KEY=$VLLM_API_KEY" -p {PORT}:{PORT}{shm} '
        f"{IMAGE} --model " + " ".join(args)
    )
