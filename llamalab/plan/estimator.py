"""Memory and speed arithmetic over the catalog: what a model needs, and what fits where.

Pure Python (no torch). Every figure is a breakdown of named byte counts so a learner can see
where the memory goes; the assumptions behind each term live in catalog/assumptions.toml.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from .. import catalog as cat
from ..catalog import GPU, ModelCard, Scheme, card, linear_shapes
from ..core import validate
from ..core.errors import InvalidSetting
from ..core.hardware import Hardware, compute_dtype, default_device, hardware
from .parallel import ENGINES, Split, capacity, split

if TYPE_CHECKING:
    import pandas as pd

MODES = ("inference", "full", "lora", "qlora")
GGUF_Q6_K_BPW = 210 * 8 / 256  # ggml blocks: Q6_K stores 256 weights in 210 bytes,
GGUF_Q8_0_BPW = 34 * 8 / 32  # Q8_0 32 weights in 34 bytes
KV_DTYPES = {"fp32": 4, "bf16": 2, "fp16": 2, "fp8": 1, "int8": 1, "q8_0": 1.0625, "q4_0": 0.5625}


def assumptions() -> dict:
    """The estimator's constants beyond arithmetic,
    each with its source (catalog/assumptions.toml)."""
    return cat.read("assumptions.toml")


@dataclass(frozen=True)
class Estimate:
    """Bytes a model needs under one scheme/context/batch/mode, as a named breakdown."""

    model: str
    scheme: str
    context: int
    batch: int
    mode: str
    kv_dtype: str
    device: str
    breakdown: dict = field(hash=False)
    notes: tuple[str, ...] = ()
    load_transient_bytes: int = 0  # the unquantized copy a quantize-while-loading backend reads
    engine: str = "transformers"  # whose prefill and overheads are counted (parallel.ENGINES)
    card: ModelCard | None = field(default=None, compare=False, repr=False)

    @property
    def total_bytes(self) -> int:
        return int(sum(self.breakdown.values()))

    @property
    def load_peak_bytes(self) -> int:
        """Memory while loading: weights + runtime + the copy being quantized (no KV cache yet)."""
        return self.breakdown["weights"] + self.breakdown["overhead"] + self.load_transient_bytes

    @property
    def peak_bytes(self) -> int:
        """What must fit: the larger of running (total) and loading."""
        return max(self.total_bytes, self.load_peak_bytes)

    def fits(self, gpu="this", count: int = 1) -> bool:
        """True if the peak fits `count` of `gpu` (a catalog name, a GPU, a Hardware, 'this' or
        bytes) within the share of it the engine may use (vLLM: 0.95 at most)."""
        room = budget_bytes(gpu) * capacity(self.engine)
        return self.peak_bytes <= room * validate.integer("count", count, 1)

    def split(self, gpu, gpus_per_node: int = 8, max_nodes: int | None = None) -> Split:
        """GPUs of `gpu`'s type per replica as TP × PP, by the parallelism rules
        (plan/parallel.py): the one answer to "how many GPUs"."""
        c = self.card or card(self.model)
        one, name = _one_device(gpu)
        overhead = self.breakdown["overhead"]
        return split(c, self.peak_bytes, overhead, one, name, self.engine, gpus_per_node, max_nodes)

    def devices_needed(self, gpu) -> int:
        """How many GPUs of `gpu`'s type one replica needs: a count tensor parallelism can use
        (1, 2, 4, 8, then whole nodes of 8), see `split`."""
        return self.split(gpu).gpus

    def to_dict(self) -> dict:
        d = {
            k: getattr(self, k)
            for k in ("model", "scheme", "context", "batch", "mode", "kv_dtype", "device")
        }
        d.update({f"{k}_bytes": v for k, v in self.breakdown.items()})
        d["total_bytes"] = self.total_bytes
        d["load_peak_bytes"] = self.load_peak_bytes
        return d

    def __str__(self) -> str:
        rows = [
            f"{self.model} · {self.scheme} · {self.mode} · context {self.context} "
            f"· batch {self.batch}"
        ]
        rows += [f"  {k:<12}{v / 1e9:>10.3f} GB" for k, v in self.breakdown.items()]
        rows.append(f"  {'total':<12}{self.total_bytes / 1e9:>10.3f} GB")
        if self.load_transient_bytes:
            rows.append(f"  {'load peak':<12}{self.load_peak_bytes / 1e9:>10.3f} GB")
        return "\n".join(rows)

    def _repr_html_(self) -> str:
        row = "<tr><td>{}</td><td style='text-align:right'>{:.3f} GB</td></tr>"
        cells = "".join(row.format(k, v / 1e9) for k, v in self.breakdown.items())
        cells += row.format("<b>total</b>", self.total_bytes / 1e9)
        if self.load_transient_bytes:
            cells += row.format("load peak", self.load_peak_bytes / 1e9)
        return (
            f"<b>{self.model} · {self.scheme} · {self.mode}</b> (context {self.context}, batch "
            f"{self.batch})<table>{cells}</table>"
        )


# ---------------------------------------------------------------- arithmetic pieces

LORA_PRESETS = {
    "guide": ("q_proj", "v_proj")
}  # the guide's LoraConfig; "all-linear" = every linear


def named_linears(c: ModelCard) -> dict[str, tuple[int, int, int]]:
    """Every linear by its Llama-family module name: (in, out, count in the whole model),
    lm_head excluded."""
    q, kv, n = c.heads * c.head_dim, c.kv_heads * c.head_dim, c.layers
    mlp = n * (c.experts if c.is_moe else 1)
    out = {
        "q_proj": (c.hidden, q, n),
        "k_proj": (c.hidden, kv, n),
        "v_proj": (c.hidden, kv, n),
        "o_proj": (q, c.hidden, n),
    }
    if c.mlp == "gated":
        out["gate_proj"] = (c.hidden, c.intermediate, mlp)
    return out | {
        "up_proj": (c.hidden, c.intermediate, mlp),
        "down_proj": (c.intermediate, c.hidden, mlp),
    }


def lora_targets(c: ModelCard, target_modules="all-linear") -> list[tuple[int, int, int]]:
    """(in, out, count) of the linears LoRA adapts: 'all-linear', 'guide' (q_proj, v_proj), or
    module names (a list or a comma-separated string, as FinetuneSettings takes them)."""
    linears = named_linears(c)
    if target_modules is None or target_modules == "all-linear":
        return list(linears.values())
    names = (
        LORA_PRESETS.get(target_modules, target_modules)
        if isinstance(target_modules, str)
        else target_modules
    )
    if isinstance(names, str):
        names = names.split(",")
    if not isinstance(names, (list, tuple)) or not all(isinstance(x, str) for x in names):
        raise InvalidSetting(
            f"target_modules={target_modules!r} is not a preset or a list of module names.",
            "Use 'guide', 'all-linear' or e.g. 'q_proj,v_proj'.",
        )
    names = {x.strip().rsplit(".", 1)[-1] for x in names if x.strip()}
    unknown = sorted(names - set(linears))
    if unknown or not names:
        raise InvalidSetting(
            f"target_modules: {', '.join(unknown) or 'no name'} is not a linear of {c.name}.",
            f"Use 'guide', 'all-linear' or names among {', '.join(linears)}.",
        )
    return [linears[x] for x in linears if x in names]


def lora_params(c: ModelCard, rank: int, target_modules="all-linear") -> int:
    """LoRA adds rank × (in + out) per adapted linear (by default every attention
    and MLP linear)."""
    return rank * sum((i + o) * n for i, o, n in lora_targets(c, target_modules))


def weight_bytes(
    c: ModelCard, s: Scheme, group_size: int | None = None, kept_bytes: int = 2
) -> dict[str, int]:
    """Bytes of stored weights, split into quantized linears and the tensors kept unquantized (in
    16-bit unless `kept_bytes` says otherwise)."""
    if _kquant_falls_back(c, s):
        return _kquant_fallback_bytes(c, s)
    if s.is_float or s.embeddings == "quantize":
        bpw = s.bits_per_weight(c.hidden, group_size)
        return {"weights": int(c.params * bpw / 8)}
    if s.embeddings == "llama.cpp":
        # llama-quantize stores the output matrix (the tied embedding if there is none) as Q6_K,
        # or as Q8_0 when its rows are not a multiple of Q6_K's 256-weight block
        out = c.vocab * c.hidden
        out_bpw = GGUF_Q6_K_BPW if c.hidden % 256 == 0 else GGUF_Q8_0_BPW
        return {
            "quantized": int((c.params - out) * s.bits_per_weight(c.hidden) / 8),
            "output": int(out * out_bpw / 8),
        }
    kept = c.embedding_params + (2 * c.layers + 1) * c.hidden
    quantized = c.params - kept
    bpw = s.bits_per_weight(c.hidden, group_size)
    return {
        "quantized": int(quantized * s.bits / 8),
        "scales": int(quantized * (bpw - s.bits) / 8),
        "kept": kept * kept_bytes,
    }


def _compute_bytes(s: Scheme, device: str) -> int:
    """Bytes per element nf4 computes and keeps embeddings in on `device` (runtime/backends/nf4.py
    chooses the same): 2 (bf16), or 4 on a CPU without bf16 instructions. 2 for other schemes."""
    return 4 if s.family == "nf4" and compute_dtype(device) == "float32" else 2


def _kquant_falls_back(c: ModelCard, s: Scheme) -> bool:
    """k-quants pack 256 weights per block: hidden-wide rows that are not a multiple of
    256 cannot use them."""
    return bool(s.fallback_bpw) and c.hidden % 256 != 0


def _kquant_fallback_bytes(c: ModelCard, s: Scheme) -> dict[str, int]:
    """A k-quant of a model whose hidden size is not a multiple of 256: every tensor with
    hidden-wide rows (q/k/v/o, gate/up, an untied embedding) takes the fallback type, the output
    matrix Q8_0."""
    out = c.vocab * c.hidden
    fallback = sum(i * o * n for i, o, n in linear_shapes(c) if i % 256) + c.embedding_params - out
    rest = c.params - out - fallback
    return {
        "quantized": int(rest * s.effective_bpw / 8),
        "fallback": int(fallback * s.fallback_bpw / 8),
        "output": int(out * GGUF_Q8_0_BPW / 8),
    }


def kv_cache_bytes(c: ModelCard, context: int, batch: int = 1, kv_bytes: float = 2) -> int:
    """K and V for every layer: 2 · layers · kv_heads · head_dim · context · batch · bytes."""
    return int(2 * c.layers * c.kv_heads * c.head_dim * context * batch * kv_bytes)


def _activation_bytes(c: ModelCard, tokens: int, act_bytes: int) -> int:
    a = assumptions()["activations"]
    ffn = c.intermediate * (max(c.experts_active, 1) if c.is_moe else 1)
    per_token = a["hidden_factor"] * c.hidden + a["ffn_factor"] * ffn
    return int(tokens * per_token * act_bytes)


def _prefill_bytes(c: ModelCard, chunk: int, context: int, act_bytes: int, engine: str) -> int:
    """One prefill pass of `chunk` tokens: the layer activations in the engine's dtype, and where
    the engine keeps them (llama.cpp without flash attention) the chunk's attention scores over the
    whole context (catalog/assumptions.toml [engines])."""
    e = assumptions()["engines"]
    act = _activation_bytes(c, chunk, e.get(f"{engine}_activation_bytes", act_bytes))
    scores = chunk * context * c.heads * 4 if e.get(f"{engine}_attention_scores") else 0
    return act + scores


def _cpu_dequant_bytes(c: ModelCard, compute: int) -> int:
    """CPU inference over weights quantized while loading: each matmul dequantizes its weight into
    the `compute` dtype and the allocator keeps the freed blocks, about `cpu_dequant_layers` layers'
    quantized linears (catalog/assumptions.toml, measured at 1B-3B)."""
    per_layer = sum(i * o * n for i, o, n in linear_shapes(c, active=True)) / c.layers
    return int(per_layer * compute * assumptions()["runtime"]["cpu_dequant_layers"])


def _train_activation_bytes(
    c: ModelCard, tokens: int, checkpointing: bool, act_bytes: int = 2
) -> int:
    """What backward keeps: per layer the 16-bit figure scaled to the activation dtype (fp32 keeps
    twice as much), or only each layer's input plus one recomputed layer with checkpointing; plus
    the loss's logits."""
    a, t = assumptions()["activations"], assumptions()["training"]
    scale = act_bytes / 2
    kept = a["checkpoint_bytes_per_hidden"] if checkpointing else a["train_bytes_per_hidden"]
    one_layer = a["train_bytes_per_hidden"] * scale * tokens * c.hidden if checkpointing else 0
    logits = tokens * c.vocab * t["logits_bytes_per_vocab"]
    return int(c.layers * tokens * c.hidden * kept * scale + one_layer + logits)


# ---------------------------------------------------------------- the estimate


def estimate(
    model="default",
    scheme: str | Scheme = "bf16",
    context: int = 4096,
    batch: int = 1,
    mode: str = "inference",
    kv_dtype: str | None = None,
    *,
    device: str = "auto",
    group_size: int | None = None,
    lora_rank: int | None = None,
    gradient_checkpointing: bool = True,
    target_modules="all-linear",
    engine: str | None = None,
) -> Estimate:
    """Memory needed to run (`inference`) or train (`full`, `lora`, `qlora`) a model.

    `context` is prompt + generated tokens (inference) or the sequence length (training: the longest
    padded row of a micro-batch, which is what a run's peak sees). `target_modules` (lora/qlora):
    which linears get adapters, as FinetuneSettings takes it ('all-linear', 'guide' = q_proj/v_proj,
    or names). `device` only changes the fixed runtime overhead ("cuda": CUDA context; "cpu": the
    Python process); "auto" is this machine's kind (its GPU if it has one). `engine` (inference):
    'transformers' prefills the whole prompt at once; 'vllm' and 'llama.cpp' prefill in chunks and
    keep their own overheads; default llama.cpp for GGUF schemes, else transformers.
    """
    c = card(model)
    s = cat.scheme(scheme, c)
    device = _device(device)
    engine = _engine(engine, s, mode)
    _check(context, batch, mode, kv_dtype, device, group_size, lora_rank, gradient_checkpointing)
    lora_targets(c, target_modules)  # a bad name raises here, whatever the mode
    notes: list[str] = []
    if mode == "qlora" and s.name != "nf4":
        notes.append(f"QLoRA keeps the frozen base in nf4, not {s.name}: estimated as nf4.")
        s = cat.scheme("nf4")
    if mode == "full" and not s.is_float:
        raise InvalidSetting(
            f"Full fine-tuning needs fp32/bf16/fp16 weights, not {s.name}.",
            "Use mode='qlora' (4-bit base + adapters) or mode='lora' with a float scheme.",
        )
    kv_name = kv_dtype or ("fp32" if s.kv_bytes == 4 else "fp16")
    compute = _compute_bytes(s, device)
    act_bytes = 4 if s.name == "fp32" else 2  # nf4 in fp32 too: its measured peak did not double
    weights = weight_bytes(c, s, group_size, kept_bytes=compute)
    b: dict[str, int] = {"weights": sum(weights.values())}
    if mode == "inference":
        b["kv_cache"] = kv_cache_bytes(c, context, batch, KV_DTYPES[kv_name])
        chunk = min(batch * context, _prefill_tokens(engine))
        logits = batch * c.vocab * 4
        b["activations"] = _prefill_bytes(c, chunk, context, act_bytes, engine) + logits
        notes.append(_prefill_note(engine, chunk))
        if device == "cpu" and s.quantized_at == "load":
            b["cpu_slack"] = _cpu_dequant_bytes(c, compute)
    else:
        b["kv_cache"] = 0
        b["activations"] = _train_activation_bytes(
            c, batch * context, gradient_checkpointing, act_bytes
        )
        if mode != "full":
            b["activations"] += _lora_input_bytes(
                c,
                batch * context,
                gradient_checkpointing,
                target_modules,
                cast=s.is_float and s.bits == 16,
            )
        b.update(_training_bytes(c, s, mode, lora_rank, target_modules))
        b["cpu_slack"] = (
            _cpu_slack(c, s, mode, lora_rank, target_modules, b["activations"], compute)
            if device == "cpu"
            else 0
        )
    b["overhead"] = _overhead(engine, device)
    if c.is_moe:
        notes.append(
            f"MoE: all {c.experts} experts stay resident; {c.experts_active} run per token."
        )
    if c.sliding_window:
        notes.append(
            f"Sliding window {c.sliding_window} on some layers is ignored: "
            "KV cache is an upper bound."
        )
    if _kquant_falls_back(c, s):
        notes.append(
            f"{s.name} packs 256 weights per block; {c.name}'s hidden size {c.hidden} is not "
            f"a multiple of 256, so llama.cpp stores most tensors in a {s.fallback_bpw:g}-bit "
            "fallback type."
        )
    est = Estimate(
        c.name,
        s.name,
        context,
        batch,
        mode,
        kv_name,
        device,
        b,
        tuple(notes),
        engine=engine,
        card=c,
    )
    source = s.loads_from(device)
    if source and compute == 4:  # nf4 on a CPU without bf16 reads the checkpoint as fp32
        source = "fp32"
    if not source:
        return est
    transient = sum(weight_bytes(c, cat.scheme(source)).values())
    est = replace(est, load_transient_bytes=transient)
    return replace(
        est,
        notes=est.notes
        + (
            f"{s.name} on {device} quantizes while loading: the {source} weights pass through "
            f"memory first: load peak at least {est.load_peak_bytes / 1e9:.2f} GB (on CPU the "
            "allocator's slack can add as much again).",
        ),
    )


def _engine(engine, s: Scheme, mode: str) -> str:
    """The engine whose prefill and overheads an estimate counts; training runs in transformers."""
    if engine is None:
        return "llama.cpp" if s.is_gguf and mode == "inference" else "transformers"
    validate.choice("engine", engine, ENGINES)
    if mode != "inference" and engine != "transformers":
        raise InvalidSetting(
            f"engine={engine!r} serves models; {mode} training runs in transformers.",
            "Leave engine out (or 'transformers') for a training estimate.",
        )
    return engine


def _prefill_tokens(engine: str) -> int:
    """The most prompt tokens one forward pass holds: all of them in transformers, a chunk in the
    serving engines (catalog/assumptions.toml [engines])."""
    return assumptions()["engines"].get(f"{engine}_prefill_tokens", MAX_TOKENS)


def _prefill_note(engine: str, chunk: int) -> str:
    if engine == "transformers":
        return (
            "Activations assume the whole prompt is prefilled in one pass (transformers); "
            "engine='vllm' or 'llama.cpp' prefill in chunks and need less."
        )
    knob = "max_num_batched_tokens" if engine == "vllm" else "n_ubatch"
    return f"{engine} prefills at most {chunk} tokens per pass ({knob}): activations for those."


def _overhead(engine: str, device: str) -> int:
    """Runtime bytes per device before any weight: the CUDA context (plus vLLM's CUDA graphs) on a
    GPU, the Python process on a CPU."""
    rt = assumptions()["runtime"]
    if not device.startswith("cuda"):
        return int(rt["cpu_bytes"])
    graphs = assumptions()["engines"]["vllm_cuda_graph_bytes"] if engine == "vllm" else 0
    return int(rt["cuda_bytes"] + graphs)


def _lora_input_bytes(
    c: ModelCard, tokens: int, checkpointing: bool, target_modules="all-linear", cast: bool = False
) -> int:
    """What each adapted linear adds for backward, per input element: peft's dropout output of the
    input (in the adapter's fp32), its mask and what the adapter path holds; over a bf16/fp16 base
    (`cast`), also the input's cast to fp32."""
    t = assumptions()["training"]
    per_token_layer = sum(i * n for i, _, n in lora_targets(c, target_modules)) // c.layers
    layers = 1 if checkpointing else c.layers
    per_element = t["lora_input_bytes"] + (t["lora_cast_bytes"] if cast else 0)
    return int(tokens * layers * per_token_layer * per_element)


def _cpu_slack(
    c: ModelCard,
    s: Scheme,
    mode: str,
    rank: int | None,
    target_modules,
    activations: int,
    compute: int,
) -> int:
    """What a CPU run's peak RSS holds beyond live tensors (measured; the allocator keeps freed
    blocks): at the optimizer step about one more fp32 copy of the trained weights, counted where it
    exceeds the activations (freed by then); with QLoRA also copies of the linears bitsandbytes
    dequantizes per matmul (in the `compute` bytes); with LoRA over a 16-bit base about what an fp32
    base would hold."""
    t = assumptions()["training"]
    trained = c.params if mode == "full" else lora_params(c, rank or t["lora_rank"], target_modules)
    step = max(0, int(trained * t["cpu_step_bytes_per_param"]) - activations)
    if mode == "qlora":
        return step + int(
            sum(i * o * n for i, o, n in linear_shapes(c)) * t["cpu_qlora_dequant_copies"] * compute
        )
    if mode == "lora" and s.is_float and s.bits == 16:
        return step + int(c.params * t["cpu_lora_16bit_base_bytes_per_param"])
    return step


def _training_bytes(
    c: ModelCard, s: Scheme, mode: str, rank: int | None, target_modules="all-linear"
) -> dict[str, int]:
    t = assumptions()["training"]
    if mode == "full":
        wbytes = s.bits / 8
        master = c.params * t["master_weight_bytes"] if s.bits == 16 else 0
        return {
            "gradients": int(c.params * wbytes),
            "optimizer": int(c.params * t["adam_state_bytes"] + master),
            "adapters": 0,
        }
    n = lora_params(c, rank or t["lora_rank"], target_modules)
    return {
        "adapters": n * t["adapter_bytes"],
        "gradients": n * t["adapter_bytes"],
        "optimizer": n * t["adam_state_bytes"],
    }


MAX_TOKENS = 1 << 24  # 16M tokens: far beyond any model's context, small enough to stay arithmetic


def _check(context, batch, mode, kv_dtype, device, group_size, lora_rank, checkpointing) -> None:
    validate.integer("context", context, 1, MAX_TOKENS)
    validate.integer("batch", batch, 1, MAX_TOKENS)
    validate.choice("mode", mode, MODES)
    if kv_dtype is not None:
        validate.choice("kv_dtype", kv_dtype, KV_DTYPES)
    _check_device(device)
    if group_size is not None:
        validate.integer("group_size", group_size, 1)
    if lora_rank is not None:
        validate.integer("lora_rank", lora_rank, 1, 65536)
    validate.flag("gradient_checkpointing", checkpointing)


def _check_device(device) -> None:
    """'cpu', 'cuda' or 'cuda:N' (only the kind matters here: it picks the runtime overhead)."""
    validate.text("device", device)
    kind, _, index = device.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind != "cuda" or not index.isdecimal())):
        raise InvalidSetting(
            f"device={device!r} is not a device.", "Use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        )


def _device(device) -> str:
    """'auto' → this machine's kind (torch-free: the driver's device files); anything else
    is checked as given."""
    return default_device() if device == "auto" else device


def device_for(gpu, device: str = "auto") -> str:
    """The device an estimate for `gpu` counts the runtime of: a catalog GPU is CUDA; 'this'
    machine, a Hardware or a byte budget is this machine's kind."""
    if device != "auto":
        return device
    if isinstance(gpu, GPU) or (isinstance(gpu, str) and gpu.strip().lower() not in THIS):
        return "cuda"
    return default_device()


# ---------------------------------------------------------------- budgets and reverse questions

THIS = ("this", "here", "local")


def budget_bytes(gpu) -> int:
    """Bytes available on `gpu`: bytes, a catalog GPU name ('h100-80gb', '2x a100-80gb'), a GPU,
    this machine ('this' / a Hardware: its first GPU, else available RAM)."""
    if isinstance(gpu, (int, float)) and not isinstance(gpu, bool):
        return int(validate.number("gpu", gpu, 1))
    if isinstance(gpu, GPU):
        return gpu.memory_bytes
    if isinstance(gpu, Hardware):
        return gpu.budget_bytes()
    if validate.text("gpu", gpu).strip().lower() in THIS:
        return hardware().budget_bytes()
    count, g = gpu_count(gpu)
    return count * g.memory_bytes


def gpu_count(name: str) -> tuple[int, GPU]:
    """'2x h100-80gb' → (2, the H100); 'l4' → (1, the L4)."""
    name = validate.text("gpu", name).strip().lower()
    count, _, rest = name.partition("x ")
    if rest and count.isdecimal():
        return validate.integer("GPU count", int(count), 1, 100_000), cat.gpu(rest)
    return 1, cat.gpu(name)


def _one_device(gpu) -> tuple[int, str]:
    """(bytes, name) of one device of `gpu`'s type: '2x h100-80gb' is one H100; this machine is
    its first GPU, else its available RAM."""
    if isinstance(gpu, str) and gpu.strip().lower() not in THIS:
        g = gpu_count(gpu)[1]
        return g.memory_bytes, g.name
    if isinstance(gpu, GPU):
        return gpu.memory_bytes, gpu.name
    hw = gpu if isinstance(gpu, Hardware) else None
    if gpu in THIS or hw is not None:
        hw = hw or hardware()
        return (
            (hw.gpus[0].memory_bytes, hw.gpus[0].display) if hw.gpus else (hw.budget_bytes(), "RAM")
        )
    return budget_bytes(gpu), f"{budget_bytes(gpu) / 1e9:.1f} GB device"


def max_context(model="default", scheme="bf16", gpu="this", batch: int = 1, **kw) -> int:
    """Longest context whose estimate fits on `gpu` (0 if not even one token fits)."""
    c = card(model)
    kw["device"] = device_for(gpu, kw.get("device", "auto"))
    probe = estimate(c, scheme, 1, batch, **kw)  # bad settings raise here, not as "0 fits"
    budget = budget_bytes(gpu) * capacity(probe.engine)
    fits = lambda n: estimate(c, scheme, n, batch, **kw).peak_bytes <= budget
    if not fits(1):
        return 0
    lo, hi = 1, c.context
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def requirements_table(
    models=(
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "mistral-7b",
        "mixtral-8x7b",
        "mixtral-8x22b",
        "qwen2.5-72b",
        "gemma-2-27b",
        "phi-3-mini",
    ),
    schemes=("fp16", "int8", "gptq-4bit"),
    context: int = 4096,
) -> pd.DataFrame:
    """The hardware-requirements table, computed: weights and total per scheme,
    and the smallest fit."""
    import pandas as pd

    models, schemes = _names("models", models), _names("schemes", schemes)
    ordered = sorted(map(cat.gpu, cat.gpu_names()), key=lambda g: g.memory_bytes)
    rows = []
    for m in models:
        for s in schemes:
            e = estimate(m, s, context, device="cuda")
            single = next((g.name for g in ordered if e.fits(g)), None)
            rows.append(
                {
                    "model": m,
                    "scheme": s,
                    "weights_gb": e.breakdown["weights"] / 1e9,
                    "total_gb": e.total_bytes / 1e9,
                    "smallest_single_gpu": single or "none",
                    "h100_80gb_needed": e.devices_needed("h100-80gb"),
                }
            )
    return pd.DataFrame(rows)


def _names(arg: str, value) -> list:
    """One name or a list of them (a lone string is one name, not its letters)."""
    if isinstance(value, (str, ModelCard, Scheme)):
        return [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise InvalidSetting(
            f"{arg}={value!r} is not a list of names.",
            f"Pass a non-empty list, e.g. {arg}=['bf16'].",
        )
    return list(value)
