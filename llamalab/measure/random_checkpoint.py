"""Hugging Face checkpoints with random bf16 weights at a catalog model's published shape, for
measuring memory and speed at real sizes on a machine that cannot download the model (the
estimator checked from 1B up, `benchmarks/real_shapes.py`). Nonsense text, real bytes: every tensor
has the shape and dtype the published checkpoint has.

Labelled as random weights three times: the README's front matter (llama.cpp's converter copies
its name, description and tags into a GGUF made from it), `llamalab_random_weights.json`, and the
safetensors metadata. The tokenizer is the embedded model's (its ids fit in any larger vocabulary).
Tensors are written chunk by chunk, so memory stays near one chunk whatever the file size.
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import ModelCard, card
from ..core.errors import InvalidSetting
from ..core.paths import atomic_dir, cached
from ..runtime.files import embedded
from .random_weights import RandomShape

LABEL = "random weights — memory and speed only"
LABEL_FILE = "llamalab_random_weights.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
CHUNK = 1 << 24  # values generated at a time: 64 MB of fp32


@dataclass(frozen=True)
class Architecture:
    """What a family's config.json says beyond the card's shape (from its published config)."""

    model_type: str
    architecture: str
    qkv_bias: bool = False
    config: dict = field(default_factory=dict, hash=False)


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}
# Sources: config.json of meta-llama/Llama-3.2-1B, meta-llama/Llama-3.1-8B (rope factor 32 / 8,
# theta 500000, eps 1e-5) and Qwen/Qwen2.5-1.5B (theta 1e6, eps 1e-6, q/k/v biases).
ARCHITECTURES = {
    "Llama 3.2": Architecture(
        "llama",
        "LlamaForCausalLM",
        config={
            "rope_theta": 500000.0,
            "rms_norm_eps": 1e-5,
            "rope_scaling": {**LLAMA3_ROPE, "factor": 32.0},
        },
    ),
    "Llama 3.1": Architecture(
        "llama",
        "LlamaForCausalLM",
        config={
            "rope_theta": 500000.0,
            "rms_norm_eps": 1e-5,
            "rope_scaling": {**LLAMA3_ROPE, "factor": 8.0},
        },
    ),
    "Qwen2.5": Architecture(
        "qwen2",
        "Qwen2ForCausalLM",
        qkv_bias=True,
        config={"rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "use_sliding_window": False},
    ),
}


def random_checkpoint(
    model: str | ModelCard, path: str | Path | None = None, seed: int = 0
) -> Path:
    """The folder of a bf16 checkpoint of `model`'s shape with random weights: written once
    (default: LLAMALAB_CACHE/random-checkpoints/random-weights-<name>), then reused. Loads like
    any local checkpoint: `llamalab.load(str(folder), "int8")`."""
    c = card(model)
    arch = architecture(c)
    name = f"random-weights-{c.name}" + (f"-seed{seed}" if seed else "")
    out = Path(path) if path else cached(f"random-checkpoints/{name}", is_complete)
    if is_complete(out):
        return out
    done = is_complete
    with atomic_dir(out, done=done) as tmp:
        tokenizer = embedded.ensure_model()
        (tmp / "config.json").write_text(json.dumps(config(c, arch, tokenizer), indent=1))
        write_safetensors(tmp / "model.safetensors", tensor_shapes(c, arch), seed)
        for f in TOKENIZER_FILES:
            if (tokenizer / f).is_file():
                shutil.copy(tokenizer / f, tmp / f)
        _label(tmp, c, seed)
    return out


def gguf_shape(model: str | ModelCard) -> RandomShape:
    """The same model's shape for `random_gguf` (llama.cpp's names: the architecture, the padded
    vocabulary), so its GGUFs match the checkpoint: `random_gguf(gguf_shape("llama-3.2-1b"))`."""
    c = card(model)
    arch = architecture(c)
    if not c.tied_embeddings or c.head_dim * c.heads != c.hidden:
        raise InvalidSetting(
            f"random_gguf writes tied embeddings and head_dim = hidden / heads; {c.name} has "
            f"tied={c.tied_embeddings}, head_dim {c.head_dim}, hidden/heads {c.hidden // c.heads}.",
            "Pick a model with both, e.g. 'llama-3.2-1b' or 'qwen2.5-1.5b'.",
        )
    return RandomShape(
        c.hidden, c.layers, c.intermediate, c.heads, c.kv_heads, c.vocab, arch.model_type
    )


def is_complete(folder: Path) -> bool:
    """True once the writer finished (the label file is written last)."""
    return (Path(folder) / LABEL_FILE).is_file()


def is_random(folder: str | Path) -> bool:
    """True for a folder this module wrote."""
    return is_complete(Path(folder))


def architecture(c: ModelCard) -> Architecture:
    """The family's published config extras; InvalidSetting for families not written yet."""
    if c.family not in ARCHITECTURES or c.is_moe:
        raise InvalidSetting(
            f"No random checkpoint for {c.name} ({c.family}): the writer knows "
            f"{', '.join(ARCHITECTURES)}.",
            "Pick a model of those families, e.g. 'llama-3.2-1b' or 'qwen2.5-1.5b'.",
        )
    return ARCHITECTURES[c.family]


def config(c: ModelCard, arch: Architecture, tokenizer: Path | None = None) -> dict:
    """config.json for the card's shape; token ids are the (embedded) tokenizer's."""
    ids = _special_ids(tokenizer) if tokenizer else {}
    return {
        "architectures": [arch.architecture],
        "model_type": arch.model_type,
        "hidden_size": c.hidden,
        "intermediate_size": c.intermediate,
        "num_hidden_layers": c.layers,
        "num_attention_heads": c.heads,
        "num_key_value_heads": c.kv_heads,
        "head_dim": c.head_dim,
        "vocab_size": c.vocab,
        "max_position_embeddings": c.context,
        "tie_word_embeddings": c.tied_embeddings,
        "hidden_act": "silu",
        "attention_bias": arch.qkv_bias,
        "torch_dtype": "bfloat16",
        **arch.config,
        **ids,
    }


def tensor_shapes(c: ModelCard, arch: Architecture) -> dict[str, tuple[int, ...]]:
    """Every tensor of the transformers checkpoint by name, in file order."""
    q, kv, h = c.heads * c.head_dim, c.kv_heads * c.head_dim, c.hidden
    shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (c.vocab, h)}
    for i in range(c.layers):
        p = f"model.layers.{i}."
        attn = {"q_proj": (q, h), "k_proj": (kv, h), "v_proj": (kv, h)}
        for n, s in attn.items():
            shapes[f"{p}self_attn.{n}.weight"] = s
            if arch.qkv_bias:
                shapes[f"{p}self_attn.{n}.bias"] = (s[0],)
        shapes[f"{p}self_attn.o_proj.weight"] = (h, q)
        shapes[f"{p}mlp.gate_proj.weight"] = (c.intermediate, h)
        shapes[f"{p}mlp.up_proj.weight"] = (c.intermediate, h)
        shapes[f"{p}mlp.down_proj.weight"] = (h, c.intermediate)
        shapes[f"{p}input_layernorm.weight"] = (h,)
        shapes[f"{p}post_attention_layernorm.weight"] = (h,)
    shapes["model.norm.weight"] = (h,)
    if not c.tied_embeddings:
        shapes["lm_head.weight"] = (c.vocab, h)
    return shapes


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> None:
    """A bf16 safetensors file: norms 1, biases 0, matrices N(0, 0.02), one chunk at a time."""
    import numpy as np

    header, offset = {"__metadata__": {"format": "pt", "llamalab": LABEL}}, 0
    for name, s in shapes.items():
        n = 2 * int(np.prod(s))
        header[name] = {"dtype": "BF16", "shape": list(s), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for name, s in shapes.items():
            for chunk in _values(name, int(np.prod(s)), len(s), rng):
                f.write(chunk.tobytes())


def _values(name: str, n: int, ndim: int, rng) -> Iterator:
    """bf16 bit patterns (uint16) of one tensor, CHUNK values at a time."""
    import numpy as np

    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        if ndim > 1:
            x = rng.standard_normal(size, np.float32)
            x *= 0.02
        else:
            x = np.full(size, 0.0 if name.endswith(".bias") else 1.0, np.float32)
        yield (x.view(np.uint32) >> 16).astype(np.uint16)


def _special_ids(tokenizer: Path) -> dict:
    """bos/eos/pad ids from the tokenizer's config, where it names them."""
    cfg = tokenizer / "config.json"
    src = json.loads(cfg.read_text()) if cfg.is_file() else {}
    return {k: src[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in src}


def _label(folder: Path, c: ModelCard, seed: int) -> None:
    """README front matter (copied into GGUFs by llama.cpp's converter) and the label file."""
    (folder / "README.md").write_text(
        "---\n"
        f"name: random weights, {c.name} shape\n"
        f'description: "RANDOM WEIGHTS (llamalab.random_checkpoint): {LABEL}"\n'
        "tags: [random-weights]\n"
        "---\n\n"
        f"# {LABEL}\n\n"
        f"The shape of {c.display} ({c.source}) filled with random numbers. It writes nonsense; "
        "its memory and speed are what a trained model of this shape needs.\n"
    )
    label = {"random_weights": True, "label": LABEL, "model": c.name, "seed": seed}
    (folder / LABEL_FILE).write_text(json.dumps(label, indent=1))
